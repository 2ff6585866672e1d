#!/usr/bin/env bash
# Total update time over a link of limited speed: the delta fetched with curl over HTTP on loopback from a
# server that paces what it sends (scripts/bench/throttled-http.py) and applied as it arrives (a pipe), as
# the agent applies a delta while it downloads,
# against the same for xdelta3 -d and zstd -d --patch-from, and against EdgeUpdater's download-then-apply;
# best-url is the CLI fetching the delta itself (`delta apply old URL`), with no curl in between.
# On a pair that scripts/bench/delta.sh has prepared (images, EdgeUpdater, xdelta3 and zstd -3 deltas in its
# work dir). Each case's time runs from the request to the output written; every output is compared with
# the target image (untimed); the median of RUNS runs is printed per rate, with its ratio to xdelta3's.
#
#   scripts/bench/streamed-apply.sh [--pair AB|BC] [--comp xz|gzip|zstd] [--rates "1250000 5000000 0"] [--runs N] [--cli DIR]
#
# Rates are bytes per second; 0 is unlimited (loopback). --cli DIR: a directory holding an `edgeupdater`
# binary (default: published now with Native AOT into the work dir).
# EDGEUPDATER_BENCH_WORK: the work dir of delta.sh (default /var/tmp/edgeupdater-delta-bench).
set -euo pipefail
cd "$(dirname "$0")/../.."

pair=AB comp=xz rates="1250000 5000000 12500000 0" runs=3 cli_dir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --pair) pair=$2; shift 2 ;;
        --comp) comp=$2; shift 2 ;;
        --rates) rates=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --cli) cli_dir=$2; shift 2 ;;
        *) sed -n '2,14p' "$0" >&2; exit 2 ;;
    esac
done
for tool in curl python3 xdelta3 zstd; do
    command -v "$tool" >/dev/null || { echo "error: $tool is missing (apt-get install curl python3 xdelta3 zstd)" >&2; exit 1; }
done

work=${EDGEUPDATER_BENCH_WORK:-/var/tmp/edgeupdater-delta-bench}
base=$work/${pair:0:1}-$comp.sqfs
target=$work/${pair:1:1}-$comp.sqfs
for f in "$base" "$target" "$work/$pair-$comp.best.eud" "$work/$pair-$comp.fast.eud" "$work/$pair-$comp.xd3" "$work/$pair-$comp.z3"; do
    [ -f "$f" ] || { echo "missing $f: run scripts/bench/delta.sh first" >&2; exit 1; }
done
if [ -z "$cli_dir" ]; then
    cli_dir=$work/cli-streamed
    echo "== publishing the CLI (Native AOT) into $cli_dir"
    dotnet publish src/EdgeUpdater.Cli -c Release -r linux-x64 -p:PublishAot=true -o "$cli_dir" -nologo -v q 2>&1 | tail -3
fi
cli=$cli_dir/edgeupdater
[ -x "$cli" ] || { echo "no edgeupdater binary in $cli_dir" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 scripts/bench/throttled-http.py "$work" "$port" &
server=$!
output=$work/streamed-apply.out
download=$work/streamed-apply.download
trap 'kill $server 2>/dev/null || true; rm -f "$output" "$output.checkpoint" "$download"' EXIT
until curl -s -o /dev/null "http://127.0.0.1:$port/0/$pair-$comp.best.eud"; do sleep 0.1; done

fetch() { curl -sSf "http://127.0.0.1:$port/$1/$2"; }   # rate 0: unlimited

# case NAME RATE: one timed run, output checked.
run_case() {
    local name=$1 rate=$2 start end
    rm -f "$output" "$output.checkpoint" "$download"; sync
    start=$(date +%s%N)
    case "$name" in
        best|fast) fetch "$rate" "$pair-$comp.$name.eud" | "$cli" delta apply "$base" - -o "$output" >/dev/null ;;
        best-url) "$cli" delta apply "$base" "http://127.0.0.1:$port/$rate/$pair-$comp.best.eud" -o "$output" >/dev/null ;;
        best-then) fetch "$rate" "$pair-$comp.best.eud" > "$download"; "$cli" delta apply "$base" "$download" -o "$output" >/dev/null ;;
        xdelta3) fetch "$rate" "$pair-$comp.xd3" | xdelta3 -d -f -c -s "$base" > "$output" ;;
        zstd-3) fetch "$rate" "$pair-$comp.z3" | zstd -q -d -f --long=31 --patch-from="$base" -o "$output" ;;
    esac
    end=$(date +%s%N)
    cmp -s "$output" "$target" || { echo "error: $name at $rate B/s wrote something other than $target" >&2; exit 1; }
    echo $(((end - start) / 1000000))
}

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
cases="best best-url fast best-then xdelta3 zstd-3"
echo "sizes: best $(stat -c %s "$work/$pair-$comp.best.eud"), fast $(stat -c %s "$work/$pair-$comp.fast.eud"), xdelta3 $(stat -c %s "$work/$pair-$comp.xd3"), zstd-3 $(stat -c %s "$work/$pair-$comp.z3") bytes"
echo "| rate (B/s) | ${cases// / | } |"
echo "|---|$(for _ in $cases; do printf -- '---|'; done)"
for rate in $rates; do
    declare -A samples=()
    for _ in $(seq "$runs"); do
        for name in $cases; do
            samples[$name]+=" $(run_case "$name" "$rate")"
        done
    done
    # shellcheck disable=SC2086 # the list of samples is split on purpose
    reference=$(median ${samples[xdelta3]})
    row="| $([ "$rate" = 0 ] && echo unlimited || echo "$rate") |"
    for name in $cases; do
        # shellcheck disable=SC2086
        m=$(median ${samples[$name]})
        row+=" $m ms ($(awk -v a="$m" -v b="$reference" 'BEGIN {printf "%.2f", a / b}')x) |"
    done
    echo "$row"
    unset samples
done
