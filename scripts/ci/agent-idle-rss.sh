#!/usr/bin/env bash
# CI budget check: resident memory of the idle x64 agent (Native AOT build of the release tarball)
# stays under 32 MB. The agent runs natively against a real mosquitto and the real edgeupdater-server
# on loopback, with one system target on file slots; once the server's registry shows it (connected,
# factory image adopted, status reported), VmRSS is sampled every half second for 10 s and the
# largest sample is the result.
#
# Usage: scripts/ci/agent-idle-rss.sh [--skip-publish] [--out DIR]   (run as root: loop mounts)
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/ci/lib/fleet.sh
source scripts/ci/lib/fleet.sh

# shellcheck source=scripts/ci/lib/release-args.sh
source scripts/ci/lib/release-args.sh

budget_kib=31250   # 32 MB = 32 000 000 bytes
if [ "$publish" = 1 ]; then
    scripts/publish-agent.sh --arch x64 --out "$out"
fi
agent=$(cd "$out" && pwd)/edgeupdater-agent-$version-linux-x64/edgeupdater-agent
[ -x "$agent" ] || { echo "error: $agent is missing (scripts/publish-agent.sh --arch x64)" >&2; exit 1; }

fleet_init
fleet_build
fleet_make_keys
v1=$(fleet_make_image rootfs 1.0.0 system)
m1=$(fleet_sign "$v1" rootfs 1.0.0 system rss-board x64)
fleet_start_mosquitto
fleet_start_server
fleet_publish "$v1" "$m1"
fleet_register_device rss-x64 rss
device=$FLEET_DIR/device
fleet_write_device "$device" rss-x64 rss rss-board
cp "$v1" "$device/slots/a.img"

"$agent" run --config "$device/agent.json" >"$FLEET_DIR/agent.log" 2>&1 &
FLEET_PIDS+=($!)
pid=$!
fleet_wait "[ \"\$(fleet_device_json rss-x64 | jq -r '.online and (.targets[0].version == \"1.0.0\")')\" = true ]" 60 \
    "the agent to report rootfs 1.0.0"

max=0
samples=()
for _ in $(seq 20); do
    rss=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status")
    [ -n "$rss" ] || fleet_fail "the agent exited while idle (see agent.log)"
    samples+=("$rss")
    [ "$rss" -gt "$max" ] && max=$rss
    sleep 0.5
done
hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status")
echo "idle RSS of the x64 agent: max $max KiB ($(awk -v k="$max" 'BEGIN { printf "%.1f", k / 1024 }') MiB) over 10 s, peak since start (VmHWM) $hwm KiB; samples: ${samples[*]}"
if [ "$max" -ge "$budget_kib" ]; then
    echo "FAIL: idle RSS $max KiB is over the budget of $budget_kib KiB (32 MB)" >&2
    exit 1
fi
echo "PASS idle RSS under 32 MB"
