#!/usr/bin/env bash
# Apply memory and delta size on images with many small files, whose metadata tables are large: A holds
# FILES config-like files (10 to 60 words each) in directories of 100; B edits every 97th file and adds
# 3,000 files; C is B with one word of one file edited. Squashed with mksquashfs (gzip), A to B and B to C
# compared in the same run with xdelta3 -e -9: delta size,
# generation time and peak RSS, apply time and peak RSS, for edgeupdater fast and best at the default
# metadata table budget and, with EDGEUPDATER_BENCH_TABLES=BYTES, at that budget as well.
#   scripts/bench/many-files.sh [FILES...]          (default: 40000 300000)
# Environment: EDGEUPDATER_BENCH_WORK (scratch, default /var/tmp/edgeupdater-many-files), EDGEUPDATER_BENCH_CLI
# (a directory holding a published edgeupdater; default: published here with Native AOT).
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${EDGEUPDATER_BENCH_WORK:-/var/tmp/edgeupdater-many-files}
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(40000 300000)
source scripts/lib/deps.sh
edgeupdater_install_deps squashfs-tools xdelta3 time python3
mkdir -p "$work"

cli=${EDGEUPDATER_BENCH_CLI:-$work/cli}
if [ -z "${EDGEUPDATER_BENCH_CLI:-}" ] && { [ ! -x "$cli/edgeupdater" ] || [ -n "$(find src -newer "$cli/edgeupdater" -name '*.cs' -print -quit)" ]; }; then
    rm -rf "$cli"
    dotnet publish src/EdgeUpdater.Cli -c Release -r linux-x64 -p:PublishAot=true -o "$cli" -nologo -v q >/dev/null
fi
eu=$cli/edgeupdater

tree() { # DIR FILES EDITED(0|1): the generated tree, deterministic
    python3 - "$@" <<'EOF'
import os, random, sys
root, count, edited = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
rnd = random.Random(42)
words = ["w%05d" % i for i in range(5000)]
for i in range(count):
    d = os.path.join(root, "pkg%03d" % (i // 2000), "sub%02d" % ((i // 100) % 20))
    os.makedirs(d, exist_ok=True)
    body = " ".join(rnd.choice(words) for _ in range(rnd.randint(5, 60)))
    if edited and i % 97 == 0:
        body += " edited"
    with open(os.path.join(d, "file-with-a-longish-name-%07d.conf" % i), "w") as f:
        f.write(body + "\n")
if edited:
    for i in range(3000):
        d = os.path.join(root, "new%02d" % (i // 500))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "added-%05d.txt" % i), "w") as f:
            f.write("added %d\n" % i)
EOF
}

measure() { # command... -> "seconds rss_kib"
    /usr/bin/time -o "$work/time" -f '%e %M' "$@" >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; return 1; }
    tail -n1 "$work/time"
}

row() { printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$@"; }

echo "| files, pair | tool | delta bytes | create s | create RSS KiB | apply s | apply RSS KiB |"
echo "|---:|---|---:|---:|---:|---:|---:|"
for count in "${counts[@]}"; do
    for side in A B C; do
        image=$work/$side-$count.sqfs
        [ -f "$image" ] && continue
        rm -rf "$work/$side-$count"
        tree "$work/$side-$count" "$count" "$([ $side = A ] && echo 0 || echo 1)"
        if [ $side = C ]; then
            edited=$((count / 3))
            sed -i 's/^w/W/' "$work/C-$count/$(printf 'pkg%03d/sub%02d/file-with-a-longish-name-%07d.conf' $((edited / 2000)) $(((edited / 100) % 20)) $edited)"
        fi
        mksquashfs "$work/$side-$count" "$image.part" -comp gzip -noappend -no-progress -quiet -processors 2 \
            -all-time 1700000000 -mkfs-time 1700000000 >/dev/null
        mv "$image.part" "$image"
        rm -rf "$work/$side-$count"
    done
    for pair in AB BC; do
        old=$work/${pair:0:1}-$count.sqfs new=$work/${pair:1:1}-$count.sqfs d=$work/$pair-$count
        cat "$old" "$new" >/dev/null
        budgets=(default)
        [ -z "${EDGEUPDATER_BENCH_TABLES:-}" ] || budgets+=("$EDGEUPDATER_BENCH_TABLES")
        for budget in "${budgets[@]}"; do
            args=()
            [ "$budget" = default ] || args=(--max-metadata-tables "$budget")
            for level in fast best; do
                read -r gs gm < <(measure "$eu" delta create "$old" "$new" -o "$d.$level.eud" --level "$level" "${args[@]}")
                section="metadata section"
                grep -q 'metadata 0 (' "$work/out" && section="region as patched stored bytes"
                rm -f "$d.$level.out"; sync
                read -r as am < <(measure "$eu" delta apply "$old" "$d.$level.eud" -o "$d.$level.out")
                cmp -s "$d.$level.out" "$new" || { echo "edgeupdater $level did not rebuild $new" >&2; exit 1; }
                row "$count $pair" "edgeupdater $level, table budget $budget ($section)" "$(stat -c %s "$d.$level.eud")" "$gs" "$gm" "$as" "$am"
            done
        done
        read -r gs gm < <(measure xdelta3 -e -9 -f -s "$old" "$new" "$d.xd3")
        rm -f "$d.xd3.out"; sync
        read -r as am < <(measure xdelta3 -d -f -s "$old" "$d.xd3" "$d.xd3.out")
        row "$count $pair" "xdelta3 -9" "$(stat -c %s "$d.xd3")" "$gs" "$gm" "$as" "$am"
    done
done
