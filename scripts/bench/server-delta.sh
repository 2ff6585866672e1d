#!/usr/bin/env bash
# Cold delta generation through edgeupdater-server's HTTP endpoint, on the real image pair: the cached
# Debian trees A and B (scripts/bench/make-rootfs-pair.sh) as EdgeUpdater images (config.json + root/),
# squashed with mksquashfs like scripts/bench/delta.sh. The server (Release build, its own process)
# gets each delta request as from an agent: time to first byte and total of the streamed fast delta,
# then the time until the background best delta is served (scripts/bench/ServerBench, "cold").
# For comparison, in the same run: zstd -3 --long=31 --patch-from and xdelta3 -e -9 on the same pair.
#   scripts/bench/server-delta.sh [COMPRESSOR] [RUNS] [prove]        (default: xz 3)
# "prove": the server proves images on publish (Deltas:ProveOnPublish) and the runs start once it has.
# Environment: EDGEUPDATER_BENCH_CACHE (trees), EDGEUPDATER_BENCH_WORK (scratch, default /var/tmp/edgeupdater-server-delta-bench).
set -euo pipefail
cd "$(dirname "$0")/../.."
cache=${EDGEUPDATER_BENCH_CACHE:-/var/cache/edgeupdater-bench}
work=${EDGEUPDATER_BENCH_WORK:-/var/tmp/edgeupdater-server-delta-bench}
comp=${1:-xz}
runs=${2:-3}
prove=${3:-}
source scripts/lib/deps.sh
edgeupdater_install_deps xdelta3 zstd time
scripts/bench/make-rootfs-pair.sh >/dev/null   # builds or updates the cached trees
mkdir -p "$work"
dotnet build src/EdgeUpdater.Server -c Release -nologo -v q >/dev/null
dotnet build scripts/bench/ServerBench -c Release -nologo -v q >/dev/null

# Images: config.json + root/ (a hard-linked copy of the tree, so nothing is duplicated on disk).
for t in A B; do
    image="$work/$t-$comp.sqfs"
    [ "$image" -nt "$cache/$t.done" ] && continue
    version=$([ "$t" = A ] && echo 1.0.0 || echo 2.0.0)
    rm -rf "$work/tree-$t"
    mkdir -p "$work/tree-$t"
    cp -al "$cache/$t" "$work/tree-$t/root"
    printf '{"name": "bench", "version": "%s"}\n' "$version" > "$work/tree-$t/config.json"
    mksquashfs "$work/tree-$t" "$image" -comp "$comp" -noappend -no-progress -quiet -processors 2 >/dev/null
    rm -rf "$work/tree-$t"
done
old="$work/A-$comp.sqfs"; new="$work/B-$comp.sqfs"

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min), $(nproc) cores"
run=$(mktemp -d "$work/run.XXXXXX")
trap 'rm -rf "$run"' EXIT
dotnet scripts/bench/ServerBench/bin/Release/net10.0/ServerBench.dll cold \
    src/EdgeUpdater.Server/bin/Release/net10.0/edgeupdater-server.dll "$run" "$old" "$new" "$runs" $prove 2> >(grep -v '^\s*$' >&2)
grep -h "Generated\|Prepared" "$run"/server.log 2>/dev/null || true
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "| peer tool, same pair, same run | delta bytes | create s | create RSS KiB |"
echo "|---|---:|---:|---:|"
cat "$old" "$new" >/dev/null
/usr/bin/time -o "$run/time" -f '%e %M' zstd -q -f -3 --long=31 --patch-from="$old" "$new" -o "$run/z3"
read -r s m < "$run/time"; echo "| zstd -3 --long=31 --patch-from | $(stat -c %s "$run/z3") | $s | $m |"
/usr/bin/time -o "$run/time" -f '%e %M' xdelta3 -e -9 -f -s "$old" "$new" "$run/xd3"
read -r s m < "$run/time"; echo "| xdelta3 -e -9 | $(stat -c %s "$run/xd3") | $s | $m |"
