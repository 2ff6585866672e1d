#!/usr/bin/env bash
# CI smoke test of the arm64 agent: the linux-arm64 Native AOT binary of the release tarball runs under
# qemu-aarch64 (qemu-user-static, Debian's arm64 cross libc, unpacked arm64 OpenSSL and codec
# libraries) against a real
# mosquitto and the real edgeupdater-server on loopback, and must:
#   1. adopt its factory image (slot a) and report it to the server over MQTT;
#   2. on a rollout, fetch the key set chain and the signed manifest and verify them, download the
#      update (a delta from the running image when the server has one, else the full image), write it
#      into slot b, verify its SHA-256, arm the trial in the U-Boot environment (fw_setenv) and ask
#      for a reboot;
#   3. after the simulated reboot into slot b (boot counting as boot.scr does it), pass the image's
#      health check, commit, and report "committed" with version 2.0.0 to the server;
#   4. refuse release 3.0.0 whose image the server holds corrupted (its SHA-256 no longer matches the
#      signed manifest): report the failure, arm nothing, keep running 2.0.0 from slot b.
# The target is a system target on file slots: nothing has to be mounted writable and no workload
# has to be started (an app workload is started by re-executing the agent, which qemu-user cannot
# do without binfmt_misc).
#
# Usage: scripts/ci/agent-arm64-smoke.sh [--skip-publish] [--out DIR]   (run as root: loop mounts)
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/ci/lib/fleet.sh
source scripts/ci/lib/fleet.sh

# shellcheck source=scripts/ci/lib/release-args.sh
source scripts/ci/lib/release-args.sh

if [ "$publish" = 1 ]; then
    scripts/publish-agent.sh --arch arm64 --out "$out"
fi
agent=$(cd "$out" && pwd)/edgeupdater-agent-$version-linux-arm64/edgeupdater-agent
[ -x "$agent" ] || { echo "error: $agent is missing (scripts/publish-agent.sh --arch arm64)" >&2; exit 1; }

# The arm64 libraries the agent loads with dlopen (OpenSSL, the SquashFS codecs), unpacked, never
# installed: installing them would pull in libc6:arm64 beside the cross libc.
arm64_packages=(libssl3 zlib1g liblzma5 libzstd1 liblz4-1 liblzo2-2)
cache=artifacts/cache/arm64-libs
if [ ! -e "$cache/.complete" ]; then
    mkdir -p artifacts/cache
    download=$(mktemp -d)
    names=("${arm64_packages[@]/%/:arm64}")
    if ! (cd "$download" && apt-get download "${names[@]}" >/dev/null 2>&1); then
        dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
        apt-get update -qq
        (cd "$download" && apt-get download "${names[@]}" >/dev/null)
    fi
    rm -rf "$cache"
    for deb in "$download"/*_arm64.deb; do
        dpkg -x "$deb" "$cache"
    done
    touch "$cache/.complete"
    rm -rf "$download"
fi
arm64_libs=$(cd "$cache" && pwd)/usr/lib/aarch64-linux-gnu:$(cd "$cache" && pwd)/lib/aarch64-linux-gnu

run_agent() {
    LD_LIBRARY_PATH=$arm64_libs qemu-aarch64-static -L /usr/aarch64-linux-gnu "$agent" run --config "$device/agent.json" \
        >>"$FLEET_DIR/agent.log" 2>&1 &
    FLEET_PIDS+=($!)
    agent_pid=$!
}

device_field() {
    fleet_device_json smoke-arm64 2>/dev/null | jq -r "$1" 2>/dev/null
}

started=$SECONDS
fleet_init
fleet_build
fleet_make_keys
v1=$(fleet_make_image rootfs 1.0.0 system)
v2=$(fleet_make_image rootfs 2.0.0 system)
m1=$(fleet_sign "$v1" rootfs 1.0.0 system smoke-board arm64)
m2=$(fleet_sign "$v2" rootfs 2.0.0 system smoke-board arm64)
fleet_start_mosquitto
fleet_start_server
fleet_publish "$v1" "$m1"
fleet_publish "$v2" "$m2"
fleet_register_device smoke-arm64 smoke
device=$FLEET_DIR/device
fleet_write_device "$device" smoke-arm64 smoke smoke-board
cp "$v1" "$device/slots/a.img"
truncate -s "$(( $(stat -c %s "$v2") + 1048576 ))" "$device/slots/b.img"
fleet_log "fleet up in $((SECONDS - started)) s: server $FLEET_HTTP, mosquitto 127.0.0.1:$FLEET_MQTT_PORT"

# 1. Factory image adopted and reported.
step=$SECONDS
run_agent
fleet_wait "[ \"\$(device_field '.targets[0].version')\" = 1.0.0 ]" 180 "the arm64 agent to report rootfs 1.0.0 (see agent.log)"
fleet_log "1. arm64 agent up under qemu, reported rootfs 1.0.0 in $((SECONDS - step)) s"

# 2. Rollout: verify, download, write slot b, arm the trial, reboot request.
step=$SECONDS
manifest_sha=$(sha256sum "$m2" | cut -d' ' -f1)
"${FLEET_CLI[@]}" rollout start --manifest "$m2" --group smoke --phases 100 --server "$FLEET_HTTP" --token "$FLEET_TOKEN" \
    >>"$FLEET_DIR/cli.log" 2>&1 || fleet_fail "rollout start"
fleet_wait "[ -e '$device/boot/reboot-requested' ]" 600 "the agent to write slot b and ask for a reboot"
cmp -s -n "$(stat -c %s "$v2")" "$v2" "$device/slots/b.img" || fleet_fail "slot b does not hold the 2.0.0 image"
env=$(fw_printenv -c "$device/boot/fw_env.config")
# Here-strings, not `printf | grep -q`: bash's printf writes line by line, and a grep that has already
# matched and exited makes a later line's write fail with SIGPIPE, which pipefail turns into a failure.
if ! grep -qx 'eu_slot=b' <<<"$env" || ! grep -qx 'upgrade_available=1' <<<"$env"; then
    fleet_fail "trial not armed in the U-Boot environment: $env"
fi
deltas=$(find "$FLEET_DIR/server/deltas" -name '*.delta' 2>/dev/null | wc -l)
if [ "$deltas" -gt 0 ]; then
    transfer="a delta (the server generated $deltas)"
else
    transfer="the full image (the server generated no delta)"
fi
fleet_log "2. manifest $manifest_sha verified, $transfer written to slot b and verified, trial armed, reboot requested in $((SECONDS - step)) s"

# 3. Reboot into the trial, health check, commit.
step=$SECONDS
kill "$agent_pid"
wait "$agent_pid" 2>/dev/null || true
booted=$(fleet_power_on "$device")
[ "$booted" = b ] || fleet_fail "the simulated boot script booted slot $booted, b expected"
run_agent
fleet_wait "[ \"\$(device_field '.state')\" = committed ] && [ \"\$(device_field '.targets[0].version')\" = 2.0.0 ]" 300 \
    "the agent to commit 2.0.0 after the trial boot"
env=$(fw_printenv -c "$device/boot/fw_env.config")
grep -qx 'upgrade_available=0' <<<"$env" || fleet_fail "trial not committed in the U-Boot environment: $env"
fleet_log "3. trial boot of slot b healthy, committed and reported in $((SECONDS - step)) s"

# 4. A corrupted image is refused after download.
step=$SECONDS
v3=$(fleet_make_image rootfs 3.0.0 system)
m3=$(fleet_sign "$v3" rootfs 3.0.0 system smoke-board arm64)
fleet_publish "$v3" "$m3"
v3_sha=$(sha256sum "$v3" | cut -d' ' -f1)
stored=$FLEET_DIR/server/content/images/${v3_sha:0:2}/$v3_sha
[ -f "$stored" ] || fleet_fail "the server does not keep the image at $stored"
printf 'corrupt' | dd of="$stored" bs=1 seek=4096 conv=notrunc status=none
"${FLEET_CLI[@]}" rollout start --manifest "$m3" --group smoke --phases 100 --server "$FLEET_HTTP" --token "$FLEET_TOKEN" \
    >>"$FLEET_DIR/cli.log" 2>&1 || fleet_fail "rollout start 3.0.0"
fleet_wait "[ \"\$(device_field '.state')\" = failed ]" 300 "the agent to refuse the corrupted 3.0.0 image"
error=$(device_field '.lastError')
env=$(fw_printenv -c "$device/boot/fw_env.config")
if ! grep -qx 'eu_slot=b' <<<"$env" || ! grep -qx 'upgrade_available=0' <<<"$env" || [ -e "$device/boot/reboot-requested" ]; then
    fleet_fail "a refused update changed the boot environment or asked for a reboot: $env"
fi
[ "$(device_field '.targets[0].version')" = 2.0.0 ] || fleet_fail "the running version changed after a refused update"
fleet_log "4. corrupted 3.0.0 refused in $((SECONDS - step)) s: $error"

echo "PASS arm64 smoke ($((SECONDS - started)) s): $(file -b "$agent" | cut -d, -f1-2) under $(qemu-aarch64-static --version | head -n 1)"
echo "     registry: $(fleet_device_json smoke-arm64 | jq -c '{state, version: .targets[0].version, activeSlot: .targets[0].activeSlot}')"
