#!/usr/bin/env bash
# Agent delta benchmark (docs/benchmarks.md, "Agent"): the Native AOT agent updating an app target from
# a delta, on loopback (mosquitto + a static HTTP repository), against the same update as a full image
# in the same run. Per case: time from the MQTT notice to the `committed` status, bytes downloaded, and
# the agent's RSS peak (VmHWM of a fresh agent process that did just that one update).
#
#   scripts/bench/agent-delta.sh [--comp xz|gzip|zstd] [--sizes "100 500"] [--runs N] [--no-debian] [--rate B/s] [--agent DIR] [--no-bc]
#
# --rate caps the agent's downloads (download.maxBytesPerSecond) to time the update over a slower link;
# --agent DIR runs the `edgeupdater-agent` binary in DIR (another build, published beforehand) instead of
# publishing this tree's; --no-bc leaves out the one-line edit (B->C).
#
# Cases:
#   debian A->B, B->C  app images whose root/ is the Debian tree of scripts/bench/make-rootfs-pair.sh
#                      (A minbase, B upgraded + packages, C = B + one edited line), squashed with
#                      mksquashfs -comp $comp; workload /bin/sleep, health command test -s /etc/debian_version
#   synthetic N MB     busybox app + N MB of incompressible payload in 64 files; B rewrites 3 of them and
#                      adds one (about 6 % new): the RSS peak at two image sizes shows whether it grows
# Deltas are made with `edgeupdater delta create` (level best, as the server serves after its first
# request). Needs root, mosquitto, mksquashfs, busybox, python3; the Debian trees are built on first use.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh
edgeupdater_install_deps

comp=xz sizes="100 500" runs=1 debian=1 rate=0 agent_dir="" bc=1
while [ $# -gt 0 ]; do
    case "$1" in
        --comp) comp=$2; shift 2 ;;
        --sizes) sizes=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --no-debian) debian=0; shift ;;
        --rate) rate=$2; shift 2 ;;
        --agent) agent_dir=$2; shift 2 ;;
        --no-bc) bc=0; shift ;;
        *) echo "usage: $0 [--comp xz|gzip|zstd] [--sizes \"100 500\"] [--runs N] [--no-debian] [--rate B/s] [--agent DIR] [--no-bc]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "error: run as root (loop mounts, chroot)" >&2; exit 1; }

work=$(mktemp -d /tmp/edgeupdater-bench-agent-delta.XXXXXX)
pids=() agent_pid=""
cleanup() {
    [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null || true
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    sleep 0.5
    findmnt -rn -o TARGET | grep "^$work" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    if [ "${EDGEUPDATER_BENCH_KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start; download cap $rate B/s (0: none)"
echo "== publishing the agent (Native AOT, linux-x64) and the CLI"
if [ -n "$agent_dir" ]; then
    agent="$agent_dir/edgeupdater-agent"
    [ -x "$agent" ] || { echo "error: no edgeupdater-agent in $agent_dir" >&2; exit 1; }
else
    dotnet publish src/EdgeUpdater.Agent -r linux-x64 -c Release -p:PublishAot=true -o "$work/agent" -nologo -v q 2>&1 | tail -3
    agent="$work/agent/edgeupdater-agent"
fi
dotnet build src/EdgeUpdater.Cli -c Release -nologo -v q -o "$work/cli" 2>&1 | tail -3
cli() { dotnet "$work/cli/edgeupdater.dll" "$@"; }
echo "AOT binary: $(stat -c %s "$agent") bytes"

mkdir -p "$work/keys" "$work/repo/v1/manifests" "$work/repo/v1/images" "$work/repo/v1/deltas"
cli keys generate --role root --out "$work/keys/root.key" >/dev/null
cli keys generate --role release --out "$work/keys/release.key" >/dev/null
cli keys sign-keyset --root "$work/keys/root.pub" --release "$work/keys/release.pub" --sign "$work/keys/root.key" -o "$work/keys/keyset-v1.json" >/dev/null

# image NAME VERSION ROOTDIR CONFIG_JSON: config.json + root/ (a bind mount of ROOTDIR) squashed with mksquashfs.
image() {
    local name=$1 version=$2 rootdir=$3 config=$4 stage="$work/stage-$1-$2"
    mkdir -p "$stage/root"
    printf '%s\n' "$config" > "$stage/config.json"
    mount --bind "$rootdir" "$stage/root"
    mksquashfs "$stage" "$work/$name-$version.sqfs" -noappend -quiet -no-progress -comp "$comp" -processors 2 >/dev/null
    umount "$stage/root"
    rm -rf "$stage"
}

# publish NAME VERSION: signs the image, puts image and manifest into the repository by hash.
publish() {
    local image="$work/$1-$2.sqfs" sha msha
    cli release sign "$image" --key "$work/keys/release.key" --keyset "$work/keys/keyset-v1.json" --name "$1" --version "$2" \
        --target-kind app --hardware bench-board --arch x64 -o "$work/$1-$2.manifest" >/dev/null
    sha=$(sha256sum "$image" | cut -d' ' -f1)
    msha=$(sha256sum "$work/$1-$2.manifest" | cut -d' ' -f1)
    ln -f "$image" "$work/repo/v1/images/$sha"
    cp "$work/$1-$2.manifest" "$work/repo/v1/manifests/$msha"
}

# delta NAME FROM TO: the delta the server would serve at /v1/deltas/{from}/{to} (the query is ignored here).
delta() {
    local from="$work/$1-$2.sqfs" to="$work/$1-$3.sqfs" fsha tsha start
    fsha=$(sha256sum "$from" | cut -d' ' -f1)
    tsha=$(sha256sum "$to" | cut -d' ' -f1)
    mkdir -p "$work/repo/v1/deltas/$fsha"
    start=$(date +%s.%N)
    cli delta create "$from" "$to" -o "$work/repo/v1/deltas/$fsha/$tsha" --level best >/dev/null
    echo "   delta $1 $2 -> $3: $(stat -c %s "$work/repo/v1/deltas/$fsha/$tsha") bytes for a $(stat -c %s "$to")-byte image (created in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s)"
}

echo "== images ($comp)"
if [ "$debian" = 1 ]; then
    bash scripts/bench/make-rootfs-pair.sh >/dev/null
    cache=${EDGEUPDATER_BENCH_CACHE:-/var/cache/edgeupdater-bench}
    for v in A:1.0.0 B:2.0.0 C:2.0.1; do
        image debian "${v#*:}" "$cache/${v%%:*}" "{\"name\":\"debian\",\"version\":\"${v#*:}\",\"entrypoint\":[\"/bin/sleep\",\"infinity\"],
 \"healthCheck\":{\"type\":\"command\",\"command\":[\"/bin/sh\",\"-c\",\"test -s /etc/debian_version\"],\"intervalSeconds\":1,\"deadlineSeconds\":60}}"
        publish debian "${v#*:}"
    done
    delta debian 1.0.0 2.0.0
    delta debian 2.0.0 2.0.1
fi
for size in $sizes; do
    tree="$work/tree-$size"
    mkdir -p "$tree/a/bin" "$tree/a/payload" "$tree/a/proc" "$tree/a/dev" "$tree/a/etc"
    cp /bin/busybox "$tree/a/bin/"
    for lib in $(ldd /bin/busybox 2>/dev/null | grep -o '/[^ ]*' || true); do mkdir -p "$tree/a$(dirname "$lib")"; cp -L "$lib" "$tree/a$lib"; done
    echo 'root:x:0:0::/:/bin/sh' > "$tree/a/etc/passwd"
    for i in $(seq -w 1 64); do head -c $(( size * 1024 * 1024 / 64 )) /dev/urandom > "$tree/a/payload/part-$i.bin"; done
    cp -al "$tree/a" "$tree/b"
    for i in 07 31 55; do rm "$tree/b/payload/part-$i.bin"; head -c $(( size * 1024 * 1024 / 64 )) /dev/urandom > "$tree/b/payload/part-$i.bin"; done
    head -c $(( size * 1024 * 1024 / 64 )) /dev/urandom > "$tree/b/payload/part-65.bin"
    for v in a:1.0.0 b:2.0.0; do
        image "synthetic$size" "${v#*:}" "$tree/${v%%:*}" "{\"name\":\"synthetic$size\",\"version\":\"${v#*:}\",\"entrypoint\":[\"/bin/busybox\",\"sleep\",\"1000000\"],
 \"healthCheck\":{\"type\":\"command\",\"command\":[\"/bin/busybox\",\"true\"],\"intervalSeconds\":1,\"deadlineSeconds\":60}}"
        publish "synthetic$size" "${v#*:}"
    done
    rm -rf "$tree"
    delta "synthetic$size" 1.0.0 2.0.0
done

echo "== broker and repository on loopback"
mqtt_port=$(free_port); http_port=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\n' "$mqtt_port" > "$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 & pids+=($!)
(cd "$work/repo" && exec python3 -m http.server "$http_port" --bind 127.0.0.1 >"$work/http.log" 2>&1) & pids+=($!)
sleep 1

results=() case_no=0
# run_case LABEL NAME FROM TO MODE(delta|full) RUN: a fresh device on FROM, one notice for TO.
run_case() {
    local label=$1 name=$2 from=$3 to=$4 mode=$5 run=$6 dev="$work/dev" image sha msha size notice start end t hwm_idle hwm line bytes
    case_no=$((case_no + 1))
    local rollout="case-$case_no"
    rm -rf "$dev"; mkdir -p "$dev/slots"
    cp "$work/$name-$from.sqfs" "$dev/slots/a.sqfs"
    image="$work/$name-$to.sqfs"
    sha=$(sha256sum "$image" | cut -d' ' -f1); msha=$(sha256sum "$work/$name-$to.manifest" | cut -d' ' -f1); size=$(stat -c %s "$image")
    cat > "$dev/agent.json" <<JSON
{
  "deviceId": "bench-1", "group": "bench", "hardware": "bench-board",
  "server": { "url": "http://127.0.0.1:$http_port" },
  "broker": { "host": "127.0.0.1", "port": $mqtt_port },
  "trust": { "rootKeys": ["$work/keys/root.pub"], "keySets": ["$work/keys/keyset-v1.json"] },
  "stateDirectory": "$dev/state", "controlSocket": "$dev/agent.sock",
  "log": { "file": "$dev/agent.log", "level": "Information" },
  "download": { "preferDelta": $([ "$mode" = delta ] && echo true || echo false), "maxBytesPerSecond": $rate },
  "targets": [ { "name": "$name", "kind": "app", "slots": { "a": "$dev/slots/a.sqfs", "b": "$dev/slots/b.sqfs" } } ]
}
JSON
    : > "$dev/status.log"
    mosquitto_pub -p "$mqtt_port" -r -n -t 'edgeupdater/v1/devices/bench-1/status'   # no retained status of the last case
    stdbuf -oL mosquitto_sub -p "$mqtt_port" -t 'edgeupdater/v1/devices/bench-1/status' -W 600 >"$dev/status.log" & local sub=$!
    "$agent" run --config "$dev/agent.json" >"$dev/agent.out" 2>&1 & agent_pid=$!
    until grep -q '"state":"idle"' "$dev/status.log"; do
        kill -0 "$agent_pid" 2>/dev/null || { echo "error: the agent exited; output:" >&2; tail -20 "$dev/agent.out" >&2; exit 1; }
        sleep 0.05
    done
    sleep 2
    hwm_idle=$(awk '/VmHWM/ {print $2}' "/proc/$agent_pid/status")
    notice=$(printf '{"schema":1,"rolloutId":"%s","target":"%s","name":"%s","version":"%s","manifestSha256":"%s","imageSha256":"%s","imageSize":%s,"issuedAt":"%s"}' \
        "$rollout" "$name" "$name" "$to" "$msha" "$sha" "$size" "$(date -u +%FT%TZ)")
    start=$(date +%s.%N)
    mosquitto_pub -p "$mqtt_port" -q 1 -t 'edgeupdater/v1/devices/bench-1/notice' -m "$notice"
    until grep -q "\"state\":\"committed\",\"rolloutId\":\"$rollout\"" "$dev/status.log"; do
        kill -0 "$agent_pid" 2>/dev/null || { echo "error: the agent exited; output:" >&2; tail -20 "$dev/agent.out" >&2; exit 1; }
        grep -q '"state":"failed"\|"state":"rolled-back"' "$dev/status.log" && { echo "error: $label failed:" >&2; tail -20 "$dev/agent.out" >&2; exit 1; }
        sleep 0.01
    done
    end=$(date +%s.%N)
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$agent_pid/status")
    kill "$sub" 2>/dev/null || true
    kill "$agent_pid"; wait "$agent_pid" 2>/dev/null || true; agent_pid=""
    findmnt -rn -o TARGET | grep "^$dev" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    line=$(grep -o 'verified ([0-9a-f]*): [^"]*' "$dev/agent.log" | tail -1)
    bytes=$(sed -nE 's/.*: ([0-9]+) bytes downloaded.*/\1/p' <<<"$line")
    [ "$(sha256sum "$dev/slots/b.sqfs" | cut -d' ' -f1)" = "$sha" ] || { echo "error: slot b does not hold $sha" >&2; exit 1; }
    t=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.2f", b - a}')
    echo "$label ($mode, run $run): notice -> committed $t s; $bytes bytes downloaded for a $size-byte image; agent VmHWM $hwm KiB (idle before the notice $hwm_idle KiB); load $(cut -d' ' -f1 /proc/loadavg)"
    echo "   agent: ${line#verified }"
    results+=("| $label | $mode | $size | $bytes | $t | $hwm | $hwm_idle |")
}

echo "== updates"
for run in $(seq 1 "$runs"); do
    if [ "$debian" = 1 ]; then
        run_case "debian A->B" debian 1.0.0 2.0.0 delta "$run"
        run_case "debian A->B" debian 1.0.0 2.0.0 full "$run"
        if [ "$bc" = 1 ]; then
            run_case "debian B->C" debian 2.0.0 2.0.1 delta "$run"
            run_case "debian B->C" debian 2.0.0 2.0.1 full "$run"
        fi
    fi
    for size in $sizes; do
        run_case "synthetic $size MB" "synthetic$size" 1.0.0 2.0.0 delta "$run"
        run_case "synthetic $size MB" "synthetic$size" 1.0.0 2.0.0 full "$run"
    done
done

echo
echo "| case | how | image bytes | downloaded bytes | notice -> committed s | agent VmHWM KiB | VmHWM before the notice KiB |"
echo "|---|---|---:|---:|---:|---:|---:|"
printf '%s\n' "${results[@]}"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
