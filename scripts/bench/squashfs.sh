#!/usr/bin/env bash
# SquashFS reader and writer benchmark against unsquashfs/mksquashfs on a real root file system.
#
#   sudo scripts/bench/squashfs.sh            # all compressors in BENCH_COMPRESSORS
#   BENCH_COMPRESSORS="gzip zstd" sudo scripts/bench/squashfs.sh
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
ROOTFS="$WORK/rootfs"
MIRROR="${BENCH_MIRROR:-http://deb.debian.org/debian}"
COMPRESSORS="${BENCH_COMPRESSORS:-gzip zstd lz4 xz}"
BLOCK=131072
mkdir -p "$WORK"
if [ ! -f "$WORK/rootfs.done" ]; then
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

# Runs a command and prints its wall time in seconds.
wall() {
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}

ratio() { echo "scale=2; $1 / $2" | bc; }

TREE_BYTES=$(du -sb "$ROOTFS" | cut -f1)
TREE_FILES=$(find "$ROOTFS" -type f | wc -l)
echo "tree: $ROOTFS, $TREE_BYTES bytes in $TREE_FILES files; $(nproc) cores"
echo
echo "| compressor | mksquashfs -processors 1 | ours, 1 thread | ratio (goal <= 1.5) | mksquashfs, $(nproc) cores | ours, $(nproc) threads | unsquashfs -p 1 to tmpfs | ours: read all files | ours: extract to tmpfs | ratio read/unsquashfs (goal <= 1) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for comp in $COMPRESSORS; do
    level=$(level_of "$comp")
    extra=()
    case "$comp" in
        gzip|zstd) extra=(-Xcompression-level "$level") ;;
    esac
    mk1=$(wall mksquashfs "$ROOTFS" "$SCRATCH/mk.sqfs" -comp "$comp" "${extra[@]}" -b $BLOCK -noappend -no-progress -processors 1)
    mkn=$(wall mksquashfs "$ROOTFS" "$SCRATCH/mk.sqfs" -comp "$comp" "${extra[@]}" -b $BLOCK -noappend -no-progress)
    rm -f "$SCRATCH/ours.sqfs"
    ours1=$(wall "${BENCH[@]}" write "$ROOTFS" "$SCRATCH/ours.sqfs" "$comp" "$level" $BLOCK 1)
    rm -f "$SCRATCH/ours.sqfs"
    oursn=$(wall "${BENCH[@]}" write "$ROOTFS" "$SCRATCH/ours.sqfs" "$comp" "$level" $BLOCK "$(nproc)")
    cat "$SCRATCH/mk.sqfs" >/dev/null
    rm -rf "$SCRATCH/x"
    unsq=$(wall unsquashfs -p 1 -no-progress -d "$SCRATCH/x" "$SCRATCH/mk.sqfs")
    rm -rf "$SCRATCH/x"
    read=$(wall "${BENCH[@]}" read "$SCRATCH/mk.sqfs")
    extract=$(wall "${BENCH[@]}" extract "$SCRATCH/mk.sqfs" "$SCRATCH/x")
    rm -rf "$SCRATCH/x"
    echo "| $comp $level | ${mk1}s | ${ours1}s | $(ratio "$ours1" "$mk1") | ${mkn}s | ${oursn}s | ${unsq}s | ${read}s | ${extract}s | $(ratio "$read" "$unsq") / $(ratio "$extract" "$unsq") |"
    "${BENCH[@]}" repro "$SCRATCH/mk.sqfs" >>"$WORK/repro.txt"
    echo "  sizes: mksquashfs $(stat -c %s "$SCRATCH/mk.sqfs"), ours $(stat -c %s "$SCRATCH/ours.sqfs")" >>"$WORK/repro.txt"
done
echo
echo "Recompression of the mksquashfs images (every block from its uncompressed bytes):"
cat "$WORK/repro.txt"
rm -f "$WORK/repro.txt"
