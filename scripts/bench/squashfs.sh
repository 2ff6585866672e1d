#!/usr/bin/env bash
# SquashFS reader and writer benchmark against unsquashfs/mksquashfs on a real root file system.
#
#   scripts/bench/squashfs.sh            # all compressors in BENCH_COMPRESSORS
#   BENCH_COMPRESSORS="gzip zstd" scripts/bench/squashfs.sh
#
# A debootstrap --variant=minbase bookworm tree is cached under scripts/bench/work/ (git-ignored).
# Every figure is a wall-clock time of one run on a warm page cache; the script prints a Markdown
# table for docs/benchmarks.md. Goals (issue 2): reader at least as fast as `unsquashfs -p 1`; writer
# within 1.5x of `mksquashfs -processors 1` per core, and using both cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh
edgeupdater_install_deps debootstrap bc

if [ "$(id -u)" -ne 0 ]; then
    echo "error: run as root (debootstrap and unsquashfs need to create device nodes and owners)." >&2
    exit 1
fi

WORK="scripts/bench/work"
# Tree A of scripts/bench/make-rootfs-pair.sh (shared with the delta benchmark) when it exists,
# otherwise the same debootstrap cached here.
SHARED="${EDGEUPDATER_BENCH_CACHE:-/var/cache/edgeupdater-bench}"
if [ -f "$SHARED/A.done" ]; then ROOTFS="$SHARED/A"; else ROOTFS="$WORK/rootfs"; fi
MIRROR="${BENCH_MIRROR:-http://deb.debian.org/debian}"
COMPRESSORS="${BENCH_COMPRESSORS:-gzip zstd lz4 xz}"
BLOCK=131072
mkdir -p "$WORK"
if [ "$ROOTFS" = "$WORK/rootfs" ] && [ ! -f "$WORK/rootfs.done" ]; then
    rm -rf "$ROOTFS"
    debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1
    touch "$WORK/rootfs.done"
fi

dotnet build scripts/bench/squashfs-bench -c Release -nologo -v q >/dev/null
BENCH=(dotnet scripts/bench/squashfs-bench/bin/Release/net10.0/squashfs-bench.dll)
SCRATCH=$(mktemp -d /dev/shm/sqfs-bench.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT

level_of() {
    case "$1" in
        gzip) echo 9 ;;
        zstd) echo 15 ;;
        xz) echo 6 ;;
        *) echo 0 ;;
    esac
}

# Runs a command; prints "wall cpu" seconds (cpu = user + sys of the command and its threads).
measure() {
    local out
    out=$( { TIMEFORMAT='%R %U %S'; time "$@" >/dev/null 2>&1; } 2>&1 | tail -1 )
    echo "$out" | awk '{ printf "%.2f %.2f\n", $1, $2 + $3 }'
}

# Runs the bench driver, which reports "wall cpu" of its work (without runtime start-up).
ours() { "${BENCH[@]}" "$@" 2>/dev/null | tail -1; }

ratio() { echo "$1 $2" | awk '{ printf "%.2f", $1 / $2 }'; }
cell() { echo "$1" | awk '{ printf "%s s (cpu %s s)", $1, $2 }'; }
cpu() { echo "$1" | cut -d' ' -f2; }
wallof() { echo "$1" | cut -d' ' -f1; }

TREE_BYTES=$(du -sb "$ROOTFS" | cut -f1)
TREE_FILES=$(find "$ROOTFS" -type f | wc -l)
echo "tree: $ROOTFS, $TREE_BYTES bytes in $TREE_FILES files; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "Writer (wall, with cpu = user + sys):"
echo
echo "| compressor | mksquashfs -processors 1 | ours, 1 thread | cpu ratio (goal <= 1.5) | mksquashfs, $(nproc) processors | ours, $(nproc) threads | ours cpu/wall with $(nproc) threads |"
echo "|---|---|---|---|---|---|---|"
READS=()
for comp in $COMPRESSORS; do
    level=$(level_of "$comp")
    extra=()
    case "$comp" in
        gzip|zstd) extra=(-Xcompression-level "$level") ;;
    esac
    mk1=$(measure mksquashfs "$ROOTFS" "$SCRATCH/mk.sqfs" -comp "$comp" "${extra[@]}" -b $BLOCK -noappend -no-progress -processors 1)
    mkn=$(measure mksquashfs "$ROOTFS" "$SCRATCH/mk.sqfs" -comp "$comp" "${extra[@]}" -b $BLOCK -noappend -no-progress)
    ours1=$(ours write "$ROOTFS" "$SCRATCH/ours.sqfs" "$comp" "$level" $BLOCK 1)
    oursn=$(ours write "$ROOTFS" "$SCRATCH/ours.sqfs" "$comp" "$level" $BLOCK "$(nproc)")
    echo "| $comp $level | $(cell "$mk1") | $(cell "$ours1") | $(ratio "$(cpu "$ours1")" "$(cpu "$mk1")") | $(cell "$mkn") | $(cell "$oursn") | $(ratio "$(cpu "$oursn")" "$(wallof "$oursn")") |"

    cat "$SCRATCH/mk.sqfs" >/dev/null
    rm -rf "$SCRATCH/x"
    unsq=$(measure unsquashfs -p 1 -no-progress -d "$SCRATCH/x" "$SCRATCH/mk.sqfs")
    rm -rf "$SCRATCH/x"
    read=$(ours read "$SCRATCH/mk.sqfs")
    unsqn=$(measure unsquashfs -p "$(nproc)" -no-progress -d "$SCRATCH/x" "$SCRATCH/mk.sqfs")
    rm -rf "$SCRATCH/x"
    readn=$(ours read "$SCRATCH/mk.sqfs" "$(nproc)")
    extract=$(ours extract "$SCRATCH/mk.sqfs" "$SCRATCH/x")
    rm -rf "$SCRATCH/x"
    READS+=("| $comp $level | $(cell "$unsq") | $(cell "$read") | $(ratio "$(wallof "$read")" "$(wallof "$unsq")") / $(ratio "$(cpu "$read")" "$(cpu "$unsq")") | $(cell "$extract") | $(ratio "$(wallof "$extract")" "$(wallof "$unsq")") | $(cell "$unsqn") | $(cell "$readn") | $(ratio "$(wallof "$readn")" "$(wallof "$unsqn")") |")
    "${BENCH[@]}" repro "$SCRATCH/mk.sqfs" >>"$WORK/repro.txt" 2>/dev/null
    echo "  sizes ($comp): mksquashfs $(stat -c %s "$SCRATCH/mk.sqfs") bytes, ours $(stat -c %s "$SCRATCH/ours.sqfs") bytes" >>"$WORK/repro.txt"
done
echo
echo "Reader (image from mksquashfs, page cache warm):"
echo
echo "| compressor | unsquashfs -p 1 -d tmpfs | ours: read every file | ratio wall / cpu (goal <= 1) | ours: extract to tmpfs | ratio wall | unsquashfs -p $(nproc) | ours: read, $(nproc) threads | ratio wall |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${READS[@]}"
echo
echo "Recompression of the mksquashfs images (every block from its uncompressed bytes):"
cat "$WORK/repro.txt"
rm -f "$WORK/repro.txt"
