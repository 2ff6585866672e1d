#!/usr/bin/env bash
# The main job on the embedded defaults, end to end on one machine:
#   release engineer: root and release keys, a key set, two versions of an app image, signed manifests
#   server:           edgeupdater-server with its embedded MQTT broker and SQLite, publish both releases
#   device:           edgeupdater-agent with an app target (A/B image files, overlay, workload), v1 running
#   update:           a rollout of v2 to the device's group; the agent asks for the delta from the image it
#                     runs (full image when the server has none), writes slot B, mounts it, starts the new
#                     workload, passes the health check and commits. The demo prints how the update came
#                     (delta or full image) and the bytes downloaded against the image size.
# Needs root (loop, squashfs and overlay mounts, chroot). Work files go to $DEMO_DIR (default a temp dir,
# removed at the end unless KEEP=1).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
source scripts/lib/deps.sh
edgeupdater_install_deps busybox curl jq
[ "$(id -u)" -eq 0 ] || { echo "error: run as root (the agent mounts images and chroots the workload)" >&2; exit 1; }

echo "== building (Release)"
dotnet build EdgeUpdater.sln -c Release -nologo -v q >/dev/null
cli() { dotnet "$repo/src/EdgeUpdater.Cli/bin/Release/net10.0/edgeupdater.dll" "$@"; }

work=${DEMO_DIR:-$(mktemp -d /tmp/edgeupdater-demo.XXXXXX)}
mkdir -p "$work"
server_pid="" agent_pid=""
cleanup() {
    [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    if [ "${KEEP:-0}" != 1 ]; then rm -rf "$work"; else echo "work files kept in $work"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || shuf -i 20000-60000 -n 1; }
http_port=$(free_port); mqtt_port=$(free_port); app_port=$(free_port)
server="http://127.0.0.1:$http_port"
token="demo-operator-token-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"

echo "== keys: an offline root key, a release key and the key set that links them"
cli keys generate --role root -o "$work/keys/root.key" >/dev/null
cli keys generate --role release -o "$work/keys/release.key" >/dev/null
cli keys sign-keyset --root "$work/keys/root.pub" --release "$work/keys/release.pub" --sign "$work/keys/root.key" -o "$work/keys/keyset-v1.json" >/dev/null

echo "== images: demo-app 1.0.0 and 2.0.0 (busybox httpd; 2.0.0 changes one line of a 2 MB asset)"
make_image() { # version, edit
    local version=$1 src="$work/src-$1"
    mkdir -p "$src/root/bin" "$src/root/www" "$src/root/etc" "$src/root/proc" "$src/root/dev" "$src/root/tmp" "$src/root/data"
    cp /bin/busybox "$src/root/bin/busybox"
    local lib
    for lib in $(ldd /bin/busybox | grep -o '/[^ ]*'); do mkdir -p "$src/root$(dirname "$lib")"; cp -L "$lib" "$src/root$lib"; done
    ln -sf busybox "$src/root/bin/sh"
    printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/data:/bin/sh\n' > "$src/root/etc/passwd"
    printf 'root:x:0:\napp:x:1000:\n' > "$src/root/etc/group"
    chmod 1777 "$src/root/tmp"
    echo "$version" > "$src/root/www/version.txt"
    seq -f "catalogue entry %06g: sensor calibration record" 1 40000 > "$src/root/www/catalogue.txt"
    [ "$version" = 2.0.0 ] && sed -i 's/^catalogue entry 020000:.*/catalogue entry 020000: recalibrated in 2.0.0/' "$src/root/www/catalogue.txt"
    cat > "$src/config.json" <<JSON
{
  "name": "demo-app",
  "version": "$version",
  "entrypoint": ["/bin/busybox", "httpd", "-f", "-p", "127.0.0.1:$app_port", "-h", "/www"],
  "user": "app",
  "volumes": [{"name": "data", "path": "/data"}],
  "healthCheck": {"type": "http", "url": "http://127.0.0.1:$app_port/version.txt", "intervalSeconds": 1, "deadlineSeconds": 30},
  "compatible": {"hardware": ["demo-board"], "architectures": ["x64", "arm64"]}
}
JSON
    cli image build "$src/root" --config "$src/config.json" -o "$work/demo-app-$version.sqfs" >/dev/null
    cli release sign "$work/demo-app-$version.sqfs" --key "$work/keys/release.key" --keyset "$work/keys/keyset-v1.json" -o "$work/demo-app-$version.manifest" >/dev/null
}
make_image 1.0.0
make_image 2.0.0
ls -l "$work"/*.sqfs | awk '{print "   " $5 " bytes  " $9}'

echo "== server: embedded MQTT broker on $mqtt_port, SQLite, HTTP on $http_port"
dotnet "$repo/src/EdgeUpdater.Server/bin/Release/net10.0/edgeupdater-server.dll" \
    --data-dir "$work/server" --urls "$server" --mqtt-bind 127.0.0.1 --mqtt-port "$mqtt_port" \
    --trusted-root "$work/keys/root.pub" --operator-token "$token" > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do curl -fs "$server/v1/keysets" -o /dev/null -w '' 2>/dev/null && break; curl -s -o /dev/null "$server/" && break; sleep 0.2; done
export EDGEUPDATER_SERVER=$server EDGEUPDATER_TOKEN=$token
cli publish "$work/demo-app-1.0.0.sqfs" --manifest "$work/demo-app-1.0.0.manifest" --keyset "$work/keys/keyset-v1.json"
cli publish "$work/demo-app-2.0.0.sqfs" --manifest "$work/demo-app-2.0.0.manifest"
password=$(curl -fsS -X PUT -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"group": "demo"}' "$server/v1/devices/demo-device-1/credentials" | jq -r .password)

echo "== device: agent with app slots A (1.0.0, factory image) and B (empty)"
mkdir -p "$work/device"
cp "$work/demo-app-1.0.0.sqfs" "$work/device/app-a.sqfs"
cat > "$work/device/agent.json" <<JSON
{
  "deviceId": "demo-device-1",
  "group": "demo",
  "hardware": "demo-board",
  "server": { "url": "$server" },
  "broker": { "host": "127.0.0.1", "port": $mqtt_port, "username": "demo-device-1", "password": "$password" },
  "trust": { "rootKeys": ["$work/keys/root.pub"], "keySets": ["$work/keys/keyset-v1.json"] },
  "stateDirectory": "$work/device/state",
  "controlSocket": "$work/device/agent.sock",
  "log": { "file": "$work/device/agent.log" },
  "targets": [
    { "name": "demo-app", "kind": "app", "slots": { "a": "$work/device/app-a.sqfs", "b": "$work/device/app-b.sqfs" } }
  ]
}
JSON
dotnet "$repo/src/EdgeUpdater.Agent/bin/Release/net10.0/edgeupdater-agent.dll" run --config "$work/device/agent.json" > "$work/device/console.log" 2>&1 &
agent_pid=$!

device_field() { curl -fsS -H "Authorization: Bearer $token" "$server/v1/devices/demo-device-1" 2>/dev/null | jq -r "$1" 2>/dev/null || true; }
wait_for() { # description, jq filter that must print true, seconds
    local i
    for i in $(seq 1 $(( $3 * 5 ))); do
        [ "$(device_field "$2")" = true ] && return 0
        kill -0 "$agent_pid" 2>/dev/null || { echo "error: the agent exited"; tail -30 "$work/device/console.log"; exit 1; }
        sleep 0.2
    done
    echo "error: timed out waiting for: $1"; echo "--- device:"; device_field .; echo "--- agent log:"; tail -40 "$work/device/console.log"; exit 1
}
workload_says() { # what the workload serves, once it answers (it starts after the agent reports)
    local i
    for i in $(seq 1 50); do curl -fsS "http://127.0.0.1:$app_port/version.txt" 2>/dev/null && return 0; sleep 0.2; done
    echo "(no answer on port $app_port)"
}
wait_for "device online and idle on 1.0.0" '.online and .state == "idle"' 60
echo "   workload says: $(workload_says)"

echo "== rollout: demo-app 2.0.0 to group demo"
cli rollout start --manifest "$work/demo-app-2.0.0.manifest" --group demo
wait_for "device committed on 2.0.0" '.state == "committed"' 120
echo "   device: $(device_field '"state=" + .state + " version=" + (.targets[0].version // "?") + " slot=" + (.targets[0].activeSlot // "?")')"
echo "   workload says: $(workload_says)"
# How the update travelled, from the agent's own history (control socket): the line written when slot B
# was verified says "from a delta: N bytes downloaded for a M-byte image (P %)" or "full image: ...".
installed=$(cli device history --socket "$work/device/agent.sock" --json | jq -r '[.history[] | select(.event == "installed")] | last | .message // ""')
read -r downloaded image_size share < <(sed -nE 's/.*: ([0-9]+) bytes downloaded for a ([0-9]+)-byte image \(([0-9.]+) %\).*/\1 \2 \3/p' <<<"$installed") || true
case "$installed" in
    *"from a delta:"*) echo "   update came as a delta: $downloaded bytes downloaded for a $image_size-byte image ($share %)" ;;
    *"full image:"*)
        echo "   update came as the full image: $downloaded bytes downloaded for a $image_size-byte image ($share %)"
        why=$(grep -hoE "no delta from the running image.*|delta refused.*" "$work/device/agent.log" | tail -1 || true)
        if [ -n "$why" ]; then echo "   why no delta: $why"; fi ;;
    *) echo "   (no install record in the agent's history: $installed)" ;;
esac
echo "== done: the device runs 2.0.0 from slot B, committed after its health check"
