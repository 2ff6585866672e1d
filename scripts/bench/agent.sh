#!/usr/bin/env bash
# Agent benchmark (docs/benchmarks.md, "Agent"): Native AOT binary size, idle RSS, and the time from
# an MQTT notice to the `committed` status for a real image pair on loopback (full image download,
# loop + squashfs + overlay activation, chrooted workload, HTTP health probe).
#
#   scripts/bench/agent.sh [--runs N]
#
# Needs root (mounts, chroot), mosquitto, mksquashfs, busybox, python3 (static HTTP server).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh
edgeupdater_install_deps

runs=3
[ "${1:-}" = "--runs" ] && runs="$2"
[ "$(id -u)" -eq 0 ] || { echo "error: run as root (loop mounts, chroot)" >&2; exit 1; }

work=$(mktemp -d /tmp/edgeupdater-bench-agent.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    sleep 0.5
    findmnt -rn -o TARGET | grep "^$work" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    if [ "${EDGEUPDATER_BENCH_KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

echo "== publishing the agent (Native AOT, linux-x64) and the CLI"
dotnet publish src/EdgeUpdater.Agent -r linux-x64 -c Release -p:PublishAot=true -o "$work/agent" -nologo -v q 2>&1 | tail -3
dotnet build src/EdgeUpdater.Cli -c Release -nologo -v q -o "$work/cli" 2>&1 | tail -3
agent="$work/agent/edgeupdater-agent"
cli() { dotnet "$work/cli/edgeupdater.dll" "$@"; }
size=$(stat -c %s "$agent")
echo "AOT binary: $size bytes ($(numfmt --to=iec "$size"))"

echo "== keys, key set, images"
mkdir -p "$work/keys" "$work/repo/v1/manifests" "$work/repo/v1/images" "$work/slots" "$work/state"
cli keys generate --role root --out "$work/keys/root.key" >/dev/null
cli keys generate --role release --out "$work/keys/release.key" >/dev/null
cli keys sign-keyset --root "$work/keys/root.pub" --release "$work/keys/release.pub" --sign "$work/keys/root.key" -o "$work/keys/keyset-v1.json" >/dev/null
arch=x64
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
build_image() { # version
    local src="$work/src-$1" lib
    mkdir -p "$src/root/bin" "$src/root/www" "$src/root/proc" "$src/root/dev" "$src/root/data" "$src/root/etc"
    cp /bin/busybox "$src/root/bin/"
    ln -sf busybox "$src/root/bin/sh"
    for lib in $(ldd /bin/busybox 2>/dev/null | grep -o '/[^ ]*' || true); do mkdir -p "$src/root$(dirname "$lib")"; cp -L "$lib" "$src/root$lib"; done
    echo "$1" > "$src/root/www/version.txt"
    echo 'root:x:0:0::/:/bin/sh' > "$src/root/etc/passwd"
    head -c 8M /dev/urandom > "$src/root/www/payload.bin"
    cat > "$src/config.json" <<JSON
{"schemaVersion":1,"name":"app","version":"$1","entrypoint":["/bin/busybox","httpd","-f","-p","127.0.0.1:$port","-h","/www"],
 "user":"0","volumes":[{"name":"data","path":"/data"}],
 "healthCheck":{"type":"http","url":"http://127.0.0.1:$port/version.txt","intervalSeconds":1,"timeoutSeconds":2,"deadlineSeconds":30}}
JSON
    mksquashfs "$src" "$work/bench-$1.sqfs" -noappend -quiet -no-progress -comp gzip >/dev/null
}
publish() { # version -> prints manifest sha
    local image="$work/bench-$1.sqfs" sha msha
    cli release sign "$image" --key "$work/keys/release.key" --keyset "$work/keys/keyset-v1.json" --name app --version "$1" \
        --target-kind app --hardware bench-board --arch "$arch" -o "$work/manifest-$1.json" >/dev/null
    sha=$(sha256sum "$image" | cut -d' ' -f1)
    msha=$(sha256sum "$work/manifest-$1.json" | cut -d' ' -f1)
    cp "$image" "$work/repo/v1/images/$sha"
    cp "$work/manifest-$1.json" "$work/repo/v1/manifests/$msha"
    echo "$msha $sha $(stat -c %s "$image")"
}
build_image 1.0.0
cp "$work/bench-1.0.0.sqfs" "$work/slots/app-a.sqfs"

echo "== broker and repository on loopback"
mqtt_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
http_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\n' "$mqtt_port" > "$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 & pids+=($!)
(cd "$work/repo" && exec python3 -m http.server "$http_port" --bind 127.0.0.1 >"$work/http.log" 2>&1) & pids+=($!)
sleep 1

cat > "$work/agent.json" <<JSON
{
  "deviceId": "bench-1", "group": "bench", "hardware": "bench-board",
  "server": { "url": "http://127.0.0.1:$http_port" },
  "broker": { "host": "127.0.0.1", "port": $mqtt_port },
  "trust": { "rootKeys": ["$work/keys/root.pub"], "keySets": ["$work/keys/keyset-v1.json"] },
  "stateDirectory": "$work/state", "controlSocket": "$work/agent.sock",
  "log": { "file": "$work/agent.log", "level": "Information" },
  "health": { "trialLimit": 2 },
  "targets": [ { "name": "app", "kind": "app", "slots": { "a": "$work/slots/app-a.sqfs", "b": "$work/slots/app-b.sqfs" } } ]
}
JSON
"$agent" run --config "$work/agent.json" >"$work/agent.out" 2>&1 & agent_pid=$!; pids+=("$agent_pid")
timeout 30 mosquitto_sub -p "$mqtt_port" -t 'edgeupdater/v1/devices/bench-1/status' -C 1 -W 30 >/dev/null
sleep 5
rss_idle=$(awk '/VmRSS/ {print $2}' "/proc/$agent_pid/status")
echo "idle RSS (agent, workload running, 5 s after start): ${rss_idle} KiB"

times=()
for i in $(seq 1 "$runs"); do
    version="1.$i.0"
    build_image "$version"
    read -r msha sha isize < <(publish "$version")
    notice=$(printf '{"schema":1,"rolloutId":"bench-%s","target":"app","name":"app","version":"%s","manifestSha256":"%s","imageSha256":"%s","imageSize":%s,"issuedAt":"%s"}' \
        "$i" "$version" "$msha" "$sha" "$isize" "$(date -u +%FT%TZ)")
    # The subscriber writes (line-buffered) to a file that is polled every 10 ms: a pipe into grep would
    # keep the pipeline waiting for mosquitto_sub's own time-out.
    : > "$work/status-$i.log"
    stdbuf -oL mosquitto_sub -p "$mqtt_port" -t 'edgeupdater/v1/devices/bench-1/status' -W 300 >"$work/status-$i.log" & sub=$!
    sleep 0.3
    start=$(date +%s.%N)
    mosquitto_pub -p "$mqtt_port" -q 1 -t 'edgeupdater/v1/devices/bench-1/notice' -m "$notice"
    until grep -q -E "\"state\":\"committed\",\"rolloutId\":\"bench-$i\"" "$work/status-$i.log"; do
        kill -0 "$sub" 2>/dev/null || { echo "error: no committed status for run $i; agent log:" >&2; tail -20 "$work/agent.out" >&2; exit 1; }
        sleep 0.01
    done
    end=$(date +%s.%N)
    kill "$sub" 2>/dev/null || true
    t=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.2f", b - a}')
    times+=("$t")
    echo "run $i: notice -> committed $t s (image $isize bytes)"
done
rss_after=$(awk '/VmRSS/ {print $2}' "/proc/$agent_pid/status")
rss_peak=$(awk '/VmHWM/ {print $2}' "/proc/$agent_pid/status")
echo "RSS after $runs updates: ${rss_after} KiB, peak (VmHWM): ${rss_peak} KiB"
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "notice -> committed: median %.2f s, min %.2f s, max %.2f s over %d runs\n", a[int((NR+1)/2)], a[1], a[NR], NR}'
