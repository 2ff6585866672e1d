#!/usr/bin/env bash
# Publishes the EdgeUpdater agent with Native AOT for linux-arm64 (cross-compiled from x64) and
# linux-x64 and packs one release tarball per architecture:
#
#   artifacts/release/edgeupdater-agent-<version>-linux-<arch>.tar.gz
#     edgeupdater-agent-<version>-linux-<arch>/
#       edgeupdater-agent            the AOT binary (stripped)
#       libsodium.so                 NSec's libsodium for the same architecture, loaded from beside the binary
#       edgeupdater-agent.service    the systemd unit
#       agent.example.json           an example configuration
#       LICENSE
#       SHA256SUMS                   sha256sum --check format, for every file above
#
# The tarballs are reproducible (sorted, owner 0, mtime of the last commit of its inputs, gzip -n), and so is the
# binary for a given SDK and package set, which keeps the Yocto recipe's SRC_URI sums stable.
#
# Usage: scripts/publish-agent.sh [--arch arm64|x64|all] [--out DIR] [--update-recipe]
#   --update-recipe  writes the tarballs' sha256 into yocto/meta-edgeupdater's agent recipe
# Logs of each publish go to DIR/publish-linux-<arch>.log (scripts/ci/agent-aot-check.sh reads them).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh

arches=(arm64 x64)
out=artifacts/release
update_recipe=0
while [ $# -gt 0 ]; do
    case "$1" in
        --arch)
            case "$2" in
                all) arches=(arm64 x64) ;;
                arm64 | x64) arches=("$2") ;;
                *) echo "error: --arch takes arm64, x64 or all, not '$2'" >&2; exit 2 ;;
            esac
            shift 2
            ;;
        --out) out=$2; shift 2 ;;
        --update-recipe) update_recipe=1; shift ;;
        -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

# shellcheck disable=SC2119 # the packages are the list in deps.sh, not this script's arguments
edgeupdater_install_deps

project=src/EdgeUpdater.Agent/EdgeUpdater.Agent.csproj
unit=scripts/release/edgeupdater-agent.service
example_config=scripts/release/agent.example.json
recipe_dir=yocto/meta-edgeupdater/recipes-core/edgeupdater
for file in "$project" "$unit" "$example_config" LICENSE; do
    [ -f "$file" ] || { echo "error: $file is missing; the release tarball ships it" >&2; exit 1; }
done

version=$(sed -n 's|.*<Version>\(.*\)</Version>.*|\1|p' Directory.Build.props | head -n 1)
[ -n "$version" ] || { echo "error: no <Version> in Directory.Build.props" >&2; exit 1; }
# The last commit that changed what goes into the tarball, not HEAD: a commit that only updates the
# recipe's sums must change neither the tarball's times nor the commit id the SDK writes into the
# binary's informational version.
inputs=(src global.json Directory.Build.props Directory.Packages.props LICENSE scripts/release scripts/publish-agent.sh)
epoch=$(git log -1 --format=%ct -- "${inputs[@]}" 2>/dev/null || echo 0)
revision=$(git log -1 --format=%H -- "${inputs[@]}" 2>/dev/null || echo unknown)
host=$(uname -m)
mkdir -p "$out"
out=$(cd "$out" && pwd)

for arch in "${arches[@]}"; do
    rid=linux-$arch
    extra=()
    case "$arch/$host" in
        arm64/x86_64)
            # Cross link on x64: clang drives the aarch64 link with the Debian cross libraries; the
            # SDK would otherwise strip with the host's objcopy, which cannot read arm64 objects.
            extra+=(-p:ObjCopyName=aarch64-linux-gnu-objcopy)
            ;;
        x64/aarch64)
            extra+=(-p:ObjCopyName=x86_64-linux-gnu-objcopy)
            ;;
    esac

    # A publish that failed half way leaves native intermediates behind, and the next one may then
    # skip the strip step: always start from a clean RID-specific state.
    rm -rf "src/EdgeUpdater.Agent/obj/Release/net10.0/$rid" "src/EdgeUpdater.Agent/bin/Release/net10.0/$rid"
    publish=$out/publish-$rid
    rm -rf "$publish"
    log=$out/publish-$rid.log
    echo "Publishing $rid (Native AOT) -> $publish"
    # Trim/AOT warnings are collected, not fatal here: scripts/ci/agent-aot-check.sh fails on any
    # from project code and lists the package ones with the reason they are harmless.
    if ! dotnet publish "$project" -c Release -r "$rid" -nologo \
        -p:PublishAot=true -p:IlcTreatWarningsAsErrors=false -p:TrimmerSingleWarn=false \
        -p:DebugType=none -p:GenerateDocumentationFile=false -p:SourceRevisionId="$revision" \
        "${extra[@]}" -o "$publish" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "error: dotnet publish for $rid failed (full log: $log)" >&2
        exit 1
    fi

    name=edgeupdater-agent-$version-$rid
    stage=$out/$name
    rm -rf "$stage"
    mkdir -p "$stage"
    install -m 0755 "$publish/edgeupdater-agent" "$stage/edgeupdater-agent"
    install -m 0644 "$publish/libsodium.so" "$stage/libsodium.so"
    install -m 0644 "$unit" "$stage/edgeupdater-agent.service"
    install -m 0644 "$example_config" "$stage/agent.example.json"
    install -m 0644 LICENSE "$stage/LICENSE"
    (cd "$stage" && sha256sum edgeupdater-agent libsodium.so edgeupdater-agent.service agent.example.json LICENSE > SHA256SUMS)
    find "$stage" -exec touch -h -d "@$epoch" {} +
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -C "$out" -cf - "$name" \
        | gzip -n -9 > "$out/$name.tar.gz"
    sha=$(sha256sum "$out/$name.tar.gz" | cut -d' ' -f1)
    echo "$out/$name.tar.gz  $(stat -c %s "$stage/edgeupdater-agent") byte binary  sha256 $sha"

    if [ "$update_recipe" = 1 ]; then
        recipe=$recipe_dir/edgeupdater-agent_$version.bb
        [ -f "$recipe" ] || { echo "error: $recipe does not exist: rename the agent recipe to the new version first" >&2; exit 1; }
        sed -i "s|^SRC_URI\[$arch.sha256sum\] = \".*\"|SRC_URI[$arch.sha256sum] = \"$sha\"|" "$recipe"
        grep -q "^SRC_URI\[$arch.sha256sum\] = \"$sha\"" "$recipe" || { echo "error: no SRC_URI[$arch.sha256sum] line in $recipe" >&2; exit 1; }
        echo "  $recipe: SRC_URI[$arch.sha256sum] updated"
    fi
done
