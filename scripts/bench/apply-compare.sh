#!/usr/bin/env bash
# Alternated apply timings of one or more builds of the CLI against xdelta3 -d, on a pair that
# scripts/bench/delta.sh has prepared (images, EdgeUpdater deltas and xdelta3 deltas in its work dir).
# Each round runs every build, then xdelta3, each with the output removed and `sync` first (untimed);
# the medians are printed, and every output is compared with the target image.
#
#   scripts/bench/apply-compare.sh PAIR COMPRESSOR LEVEL RUNS CLI_DIR...
#   scripts/bench/apply-compare.sh BC xz fast 21 /var/tmp/edgeupdater-delta-bench/cli /tmp/other-build
#
# PAIR is AB or BC; CLI_DIR holds an `edgeupdater` binary (dotnet publish output). CLI_DIR=DELTA applies
# the delta file DELTA with that build instead of the work dir's (a build whose generator changed).
# EDGEUPDATER_BENCH_WORK: the work dir of delta.sh (default /var/tmp/edgeupdater-delta-bench).
set -euo pipefail

if [ $# -lt 5 ]; then
    sed -n '2,12p' "$0" >&2
    exit 2
fi

pair=$1 compressor=$2 level=$3 runs=$4
shift 4
work=${EDGEUPDATER_BENCH_WORK:-/var/tmp/edgeupdater-delta-bench}
base=$work/${pair:0:1}-$compressor.sqfs
target=$work/${pair:1:1}-$compressor.sqfs
delta=$work/$pair-$compressor.$level.eud
xdelta=$work/$pair-$compressor.xd3
output=$work/apply-compare.out
for f in "$base" "$target" "$delta" "$xdelta"; do
    [ -f "$f" ] || { echo "missing $f: run scripts/bench/delta.sh first" >&2; exit 1; }
done
declare -A deltas
for arg in "$@"; do
    d=${arg%%=*}
    deltas[$arg]=$delta
    [ "$d" = "$arg" ] || deltas[$arg]=${arg#*=}
    [ -x "$d/edgeupdater" ] || { echo "no edgeupdater binary in $d" >&2; exit 1; }
    [ -f "${deltas[$arg]}" ] || { echo "missing ${deltas[$arg]}" >&2; exit 1; }
done

milliseconds() {
    local start end
    start=$(date +%s%N)
    "$@" >/dev/null
    end=$(date +%s%N)
    echo $(((end - start) / 1000000))
}

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -A times
for _ in $(seq "$runs"); do
    for arg in "$@"; do
        d=${arg%%=*}
        rm -f "$output" "$output.checkpoint"; sync
        times[$arg]+=" $(milliseconds "$d/edgeupdater" delta apply "$base" "${deltas[$arg]}" -o "$output")"
        cmp -s "$output" "$target" || { echo "$d/edgeupdater wrote something other than $target" >&2; exit 1; }
    done
    rm -f "$output"; sync
    times[xdelta3]+=" $(milliseconds xdelta3 -d -f -s "$base" "$xdelta" "$output")"
    cmp -s "$output" "$target" || { echo "xdelta3 wrote something other than $target" >&2; exit 1; }
done
rm -f "$output"

line="$pair $compressor $level apply, ms, median of $runs:"
for d in "$@" xdelta3; do
    # shellcheck disable=SC2086 # the list of samples is split on purpose
    line+=" $d $(median ${times[$d]})"
done
echo "$line"
