#!/usr/bin/env bash
# CI check of the agent's Native AOT release (issue: the agent on real devices):
#   - publishes linux-arm64 (cross) and linux-x64 with scripts/publish-agent.sh;
#   - no trim/AOT warning (IL2xxx, IL3xxx) may come from project code; a warning from a package must
#     be listed in scripts/ci/aot-warnings-allowed.txt with the reason it is harmless;
#   - each binary is an ELF for its architecture and under the size budget (16 MB);
#   - each tarball holds exactly the documented files and its SHA256SUMS verifies.
# Prints one line per architecture with the numbers; exits non-zero on the first broken budget.
#
# Usage: scripts/ci/agent-aot-check.sh [--skip-publish] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."

# shellcheck source=scripts/ci/lib/release-args.sh
source scripts/ci/lib/release-args.sh

size_budget=16000000
allowed=scripts/ci/aot-warnings-allowed.txt

if [ "$publish" = 1 ]; then
    scripts/publish-agent.sh --arch all --out "$out"
fi

status=0
for arch in arm64 x64; do
    rid=linux-$arch
    log=$out/publish-$rid.log
    name=edgeupdater-agent-$version-$rid
    [ -f "$log" ] || { echo "error: $log is missing (publish first)" >&2; exit 1; }

    # Trim and AOT analysis warnings, each once. Project code is ours to fix: no exceptions.
    warnings=$(grep -oE '[^ ]*: (Trim analysis |AOT analysis )?warning IL[23][0-9]{3}:[^[]*' "$log" | sort -u || true)
    project=$(printf '%s\n' "$warnings" | grep -E '(^|/)(src/EdgeUpdater\.|EdgeUpdater\.[A-Za-z]+[.:(])' || true)
    if [ -n "$project" ]; then
        echo "FAIL $rid: trim/AOT warnings from project code:" >&2
        printf '  %s\n' "$project" >&2
        status=1
    fi
    packages=$(printf '%s\n' "$warnings" | grep -vE '(^|/)(src/EdgeUpdater\.|EdgeUpdater\.[A-Za-z]+[.:(])' | grep -v '^$' || true)
    unexplained=""
    explanations=""
    while IFS= read -r warning; do
        [ -n "$warning" ] || continue
        explained=0
        while IFS='|' read -r pattern reason; do
            case "$pattern" in '' | '#'*) continue ;; esac
            if printf '%s' "$warning" | grep -qF -- "$pattern"; then
                explained=1
                explanations+="  $warning"$'\n'"    harmless: $reason"$'\n'
                break
            fi
        done < "$allowed"
        [ "$explained" = 1 ] || unexplained+="  $warning"$'\n'
    done <<< "$packages"
    if [ -n "$unexplained" ]; then
        echo "FAIL $rid: package trim/AOT warnings not explained in $allowed:" >&2
        printf '%s' "$unexplained" >&2
        status=1
    fi
    package_count=$(printf '%s\n' "$packages" | grep -c . || true)
    if [ -n "$explanations" ]; then
        echo "$rid: package trim/AOT warnings (from $allowed):"
        printf '%s' "$explanations"
    fi

    binary=$out/$name/edgeupdater-agent
    machine=$(readelf -h "$binary" | sed -n 's/^ *Machine: *//p')
    case "$arch/$machine" in
        arm64/AArch64 | "x64/Advanced Micro Devices X86-64") ;;
        *) echo "FAIL $rid: binary is for '$machine'" >&2; status=1 ;;
    esac
    size=$(stat -c %s "$binary")
    if [ "$size" -ge "$size_budget" ]; then
        echo "FAIL $rid: binary is $size bytes, the budget is under $size_budget" >&2
        status=1
    fi

    listing=$(tar -tzf "$out/$name.tar.gz" | sort | tr '\n' ' ')
    expected="$name/ $name/LICENSE $name/SHA256SUMS $name/agent.example.json $name/edgeupdater-agent $name/edgeupdater-agent.service $name/libsodium.so "
    if [ "$listing" != "$expected" ]; then
        echo "FAIL $rid: tarball holds: $listing" >&2
        echo "                 expected: $expected" >&2
        status=1
    fi
    check=$(mktemp -d)
    tar -xzf "$out/$name.tar.gz" -C "$check"
    if ! (cd "$check/$name" && sha256sum --check --strict --quiet SHA256SUMS); then
        echo "FAIL $rid: SHA256SUMS does not verify" >&2
        status=1
    fi
    sodium_machine=$(readelf -h "$check/$name/libsodium.so" | sed -n 's/^ *Machine: *//p')
    if [ "$sodium_machine" != "$machine" ]; then
        echo "FAIL $rid: libsodium.so is for '$sodium_machine', the binary for '$machine'" >&2
        status=1
    fi
    rm -rf "$check"

    recipe=yocto/meta-edgeupdater/recipes-core/edgeupdater/edgeupdater-agent_$version.bb
    sha=$(sha256sum "$out/$name.tar.gz" | cut -d' ' -f1)
    if [ -f "$recipe" ] && grep -q "^SRC_URI\[$arch.sha256sum\] = \"$sha\"" "$recipe"; then
        pinned="the Yocto recipe pins this tarball"
    else
        # Not a failure: the recipe pins the last release; a release runs publish-agent.sh --update-recipe.
        pinned="the Yocto recipe pins another build (scripts/publish-agent.sh --update-recipe at release time)"
    fi
    echo "$rid: tarball sha256 $sha; $pinned"
    awk -v rid="$rid" -v size="$size" -v tarball="$(stat -c %s "$out/$name.tar.gz")" -v packages="$package_count" \
        -v project="$(printf '%s\n' "$project" | grep -c . || true)" \
        'BEGIN { printf "%s: binary %d bytes (%.1f MiB), tarball %d bytes, package warnings %d, project warnings %d\n", rid, size, size / 1048576, tarball, packages, project }'
done
exit $status
