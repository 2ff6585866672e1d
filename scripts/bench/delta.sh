#!/usr/bin/env bash
# Delta benchmark: squashes the cached A/B/C Debian trees (scripts/bench/make-rootfs-pair.sh) with
# mksquashfs (gzip, xz, zstd) and compares, in the same run, EdgeUpdater's fast and best deltas with
# xdelta3 -e -9, bsdiff, zstd --patch-from --long=31 (-3, -19) and casync (bytes of new chunks):
# delta size, generation time, apply time, peak RSS, for A->B and B->C. Prints a Markdown table. The
# fast and best rows start from nothing; "delta prove" times proving every block of the new image (what
# the server does once per published image) and "best, image proved" is best again with that record.
#   scripts/bench/delta.sh [compressors...]      (default: xz gzip zstd)
# Environment: EDGEUPDATER_BENCH_CACHE (trees), EDGEUPDATER_BENCH_WORK (scratch, default /var/tmp/edgeupdater-delta-bench),
# EDGEUPDATER_BENCH_BSDIFF="xz" limits bsdiff (about 90 s per pair unloaded) to those compressors; "none" skips it.
# EDGEUPDATER_BENCH_PEERS (default "xdelta3 zstd3 zstd19 bsdiff casync") picks the peer tools to run, and
# EDGEUPDATER_BENCH_PAIRS (default "AB BC") the pairs, for a shorter run on a shared machine.
# EDGEUPDATER_BENCH_FAST_RUNS=N (default 0) also times `edgeupdater --level fast` and `zstd -3 --patch-from`
# N times each, alternated, on every A->B pair, and prints the medians (single runs of ~0.2 s are noise).
# EDGEUPDATER_BENCH_BEST_RUNS=N (default 0) does the same for best (from nothing, and with the image
# proved) against xdelta3 -e -9; needs the AB pair run before (its record).
# EDGEUPDATER_BENCH_APPLY_RUNS=N (default 0) times every pair's applies N times each, alternated: edgeupdater fast,
# edgeupdater best, xdelta3 -d (needs the xdelta3 peer); before each, untimed, the output file is removed and
# `sync` writes out what the run before left dirty (xdelta3 does not fsync its output, edgeupdater does).
# EDGEUPDATER_BENCH_APPLY_OUTPUT=slot makes each apply write over a file that holds the pair's old image
# instead (copied and synced before each run, untimed), as on a device whose inactive slot is a file.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
cache=${EDGEUPDATER_BENCH_CACHE:-/var/cache/edgeupdater-bench}
work=${EDGEUPDATER_BENCH_WORK:-/var/tmp/edgeupdater-delta-bench}
compressors=("$@")
peers=" ${EDGEUPDATER_BENCH_PEERS:-xdelta3 zstd3 zstd19 bsdiff casync} "
apply_output=${EDGEUPDATER_BENCH_APPLY_OUTPUT:-new}
[[ $apply_output == new || $apply_output == slot ]] || { echo "EDGEUPDATER_BENCH_APPLY_OUTPUT must be new or slot, not $apply_output" >&2; exit 2; }
read -r -a pairs <<<"${EDGEUPDATER_BENCH_PAIRS:-AB BC}"
[ ${#compressors[@]} -gt 0 ] || compressors=(xz gzip zstd)
source scripts/lib/deps.sh
edgeupdater_install_deps xdelta3 bsdiff zstd casync time
scripts/bench/make-rootfs-pair.sh >/dev/null   # builds or updates the cached trees
mkdir -p "$work"

# The CLI, published with Native AOT when possible (no JIT or runtime start-up in the timings).
if [ ! -x "$work/cli/edgeupdater" ] || [ -n "$(find src -newer "$work/cli/edgeupdater" -name '*.cs' -print -quit)" ]; then
    rm -rf "$work/cli"
    if ! dotnet publish src/EdgeUpdater.Cli -c Release -r linux-x64 -p:PublishAot=true -o "$work/cli" -nologo -v q >/dev/null 2>&1; then
        dotnet publish src/EdgeUpdater.Cli -c Release -r linux-x64 --self-contained -p:PublishReadyToRun=true -o "$work/cli" -nologo -v q >/dev/null
    fi
fi
eu="$work/cli/edgeupdater"

measure() { # command... -> "seconds rss_kib"; the command's stdout goes to $work/out
    /usr/bin/time -o "$work/time" -f '%e %M' "$@" >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; return 1; }
    tail -n1 "$work/time"
}

row() { # pair compressor tool size gen_s gen_kib apply_s apply_kib
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$@"
}

echo "| pair | comp | tool | delta bytes | create s | create RSS KiB | apply s | apply RSS KiB |"
echo "|---|---|---|---:|---:|---:|---:|---:|"
for comp in "${compressors[@]}"; do
    for t in A B C; do
        [ "$work/$t-$comp.sqfs" -nt "$cache/$t.done" ] || mksquashfs "$cache/$t" "$work/$t-$comp.sqfs" -comp "$comp" -noappend -no-progress -quiet -processors 2 >/dev/null
    done
    for pair in "${pairs[@]}"; do
        old="$work/${pair:0:1}-$comp.sqfs"; new="$work/${pair:1:1}-$comp.sqfs"; d="$work/$pair-$comp"
        cat "$old" "$new" >/dev/null   # page cache warm for everyone
        for level in fast best; do
            read -r gs gm < <(measure "$eu" delta create "$old" "$new" -o "$d.$level.eud" --level "$level")
            cp "$work/out" "$d.$level.create"
            rm -f "$d.$level.out"; sync   # every apply below writes a new file, nothing left dirty by the one before
            read -r as am < <(measure "$eu" delta apply "$old" "$d.$level.eud" -o "$d.$level.out")
            cmp -s "$d.$level.out" "$new" || { echo "edgeupdater $level did not rebuild $new" >&2; exit 1; }
            row "$pair" "$comp" "edgeupdater $level" "$(stat -c %s "$d.$level.eud")" "$gs" "$gm" "$as" "$am"
            "$eu" delta info "$d.$level.eud" > "$d.$level.info"
        done
        # What a server does once per published image (Deltas:ProveOnPublish): prove every compressed
        # block of B; then best with that record, as every delta to B is made from then on (any base).
        # The delta must be byte-identical to the one made without a record.
        rm -f "$d.record"
        read -r gs gm < <(measure "$eu" delta prove "$new" --reproduction-record "$d.record")
        row "$pair" "$comp" "edgeupdater delta prove (once per image)" "-" "$gs" "$gm" "-" "-"
        read -r gs gm < <(measure "$eu" delta create "$old" "$new" -o "$d.recorded.eud" --level best --reproduction-record "$d.record")
        cmp -s "$d.recorded.eud" "$d.best.eud" || { echo "edgeupdater best with recorded proofs differs from best" >&2; exit 1; }
        row "$pair" "$comp" "edgeupdater best, image proved" "$(stat -c %s "$d.recorded.eud")" "$gs" "$gm" "-" "-"
        if [[ $peers == *" xdelta3 "* ]]; then
            read -r gs gm < <(measure xdelta3 -e -9 -f -s "$old" "$new" "$d.xd3")
            rm -f "$d.xd3.out"; sync
            read -r as am < <(measure xdelta3 -d -f -s "$old" "$d.xd3" "$d.xd3.out")
            row "$pair" "$comp" "xdelta3 -9" "$(stat -c %s "$d.xd3")" "$gs" "$gm" "$as" "$am"
        fi
        for zl in 3 19; do
            [[ $peers == *" zstd$zl "* ]] || continue
            read -r gs gm < <(measure zstd -q -f -$zl --long=31 --patch-from="$old" "$new" -o "$d.z$zl")
            rm -f "$d.z$zl.out"; sync
            read -r as am < <(measure zstd -q -d -f --long=31 --patch-from="$old" "$d.z$zl" -o "$d.z$zl.out")
            row "$pair" "$comp" "zstd -$zl --long=31 --patch-from" "$(stat -c %s "$d.z$zl")" "$gs" "$gm" "$as" "$am"
        done
        if [[ $peers == *" bsdiff "* && " ${EDGEUPDATER_BENCH_BSDIFF:-${compressors[*]}} " == *" $comp "* ]]; then
            read -r gs gm < <(measure bsdiff "$old" "$new" "$d.bsdiff")
            rm -f "$d.bsdiff.out"; sync
            read -r as am < <(measure bspatch "$old" "$d.bsdiff.out" "$d.bsdiff")
            row "$pair" "$comp" "bsdiff" "$(stat -c %s "$d.bsdiff")" "$gs" "$gm" "$as" "$am"
        fi
        # casync: the bytes of the new image's chunks that the old image's store does not have.
        [[ $peers == *" casync "* ]] || continue
        rm -rf "$d.castr-old" "$d.castr-new"
        casync make --store="$d.castr-old" "$d.old.caibx" "$old" >/dev/null 2>&1
        read -r gs gm < <(measure casync make --store="$d.castr-new" "$d.new.caibx" "$new")
        newbytes=$(comm -13 <(cd "$d.castr-old" && find . -name '*.cacnk' | sort) <(cd "$d.castr-new" && find . -name '*.cacnk' | sort) | (cd "$d.castr-new" && xargs -r stat -c %s) | awk '{s+=$1} END {print s+0}')
        row "$pair" "$comp" "casync (new chunks)" "$newbytes" "$gs" "$gm" "-" "-"
    done
done

ms() { local start end; start=$(date +%s%N); "$@" >/dev/null 2>&1; end=$(date +%s%N); echo $(((end - start) / 1000000)); }
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
xdelta3_9() { xdelta3 -e -9 -f -s "$1" "$2" "$work/runs.xd3"; }
zstd_3() { zstd -q -f -3 --long=31 --patch-from="$1" "$2" -o "$work/runs.zst"; }
alternated() { # LEVEL RUNS PEER_NAME PEER_FUNCTION: A->B medians of LEVEL from nothing, with the image proved, and the peer
    local level=$1 runs=$2 name=$3 peer=$4 comp old new cold proved theirs
    echo
    echo "A->B generation, median of $runs alternated runs (ms): edgeupdater $level from nothing, $level with the image proved (the record delta prove left; what the server has after a publish), $name"
    for comp in "${compressors[@]}"; do
        old="$work/A-$comp.sqfs"; new="$work/B-$comp.sqfs"; cold=(); proved=(); theirs=()
        for _ in $(seq "$runs"); do
            cold+=("$(ms "$eu" delta create "$old" "$new" -o "$work/runs.eud" --level "$level")")
            proved+=("$(ms "$eu" delta create "$old" "$new" -o "$work/runs.eud" --level "$level" --reproduction-record "$work/AB-$comp.record")")
            theirs+=("$(ms "$peer" "$old" "$new")")
        done
        echo "$comp: edgeupdater $level $(median "${cold[@]}") ms (${cold[*]}), $level with the image proved $(median "${proved[@]}") ms (${proved[*]}), $name $(median "${theirs[@]}") ms (${theirs[*]})"
    done
}
output_before() { # OLD: the apply output as the next timed run finds it (EDGEUPDATER_BENCH_APPLY_OUTPUT)
    if [ "$apply_output" = slot ]; then cp "$1" "$work/runs.out"; else rm -f "$work/runs.out"; fi
    sync
}
applies() { # RUNS: apply medians of every pair, alternated: edgeupdater fast, edgeupdater best, xdelta3 -d
    local runs=$1 comp pair old new d fast best theirs
    echo
    local before="the output file removed, sync"
    [ "$apply_output" = new ] || before="the output file holding the old image, sync"
    echo "Apply, median of $runs alternated runs (ms; before each, untimed: $before): edgeupdater fast, edgeupdater best, xdelta3 -d"
    for comp in "${compressors[@]}"; do
        for pair in "${pairs[@]}"; do
            old="$work/${pair:0:1}-$comp.sqfs"; new="$work/${pair:1:1}-$comp.sqfs"; d="$work/$pair-$comp"; fast=(); best=(); theirs=()
            for _ in $(seq "$runs"); do
                output_before "$old"; fast+=("$(ms "$eu" delta apply "$old" "$d.fast.eud" -o "$work/runs.out")")
                output_before "$old"; best+=("$(ms "$eu" delta apply "$old" "$d.best.eud" -o "$work/runs.out")")
                output_before "$old"; theirs+=("$(ms xdelta3 -d -f -s "$old" "$d.xd3" "$work/runs.out")")
            done
            cmp -s "$work/runs.out" "$new" || { echo "xdelta3 did not rebuild $new" >&2; exit 1; }
            echo "$pair $comp: edgeupdater fast $(median "${fast[@]}") ms (${fast[*]}), best $(median "${best[@]}") ms (${best[*]}), xdelta3 -d $(median "${theirs[@]}") ms (${theirs[*]})"
        done
    done
}
[ "${EDGEUPDATER_BENCH_APPLY_RUNS:-0}" -eq 0 ] || applies "$EDGEUPDATER_BENCH_APPLY_RUNS"
[ "${EDGEUPDATER_BENCH_BEST_RUNS:-0}" -eq 0 ] || alternated best "$EDGEUPDATER_BENCH_BEST_RUNS" "xdelta3 -e -9" xdelta3_9
[ "${EDGEUPDATER_BENCH_FAST_RUNS:-0}" -eq 0 ] || alternated fast "$EDGEUPDATER_BENCH_FAST_RUNS" "zstd -3 --long=31 --patch-from" zstd_3

echo
echo "Generator summaries (best): blocks rebuilt by recompression vs. changed blocks not reproducible:"
for comp in "${compressors[@]}"; do
    for pair in "${pairs[@]}"; do
        printf '%s %s: ' "$comp" "$pair"; cat "$work/$pair-$comp.best.create"
    done
    [ ! -f "$work/AB-$comp.best.info" ] || { printf '%s AB info:\n' "$comp"; cat "$work/AB-$comp.best.info"; }
done
