# shellcheck shell=bash
# Sourced by the agent CI checks (scripts/ci/agent-*.sh): a fleet on loopback for one device.
# A real mosquitto (passwords and the server's ACL), the real edgeupdater-server using it as its
# external broker, keys and a key set made with the edgeupdater CLI, EdgeUpdater images built with
# mksquashfs, and the device's agent configuration with a system target on file slots and the U-Boot
# backend on a redundant environment pair (the layer's fw_env.config template).
#
# Every process started here is recorded and stopped by fleet_cleanup (by PID, nothing else).
# Variables set: FLEET_DIR, FLEET_HTTP, FLEET_TOKEN, FLEET_MQTT_PORT, FLEET_CLI (command array).

FLEET_PIDS=()

fleet_log() { echo "[$(date +%H:%M:%S)] $*"; }

fleet_fail() {
    echo "FAIL: $*" >&2
    for log in "$FLEET_DIR"/*.log; do
        [ -f "$log" ] || continue
        echo "--- last lines of $log" >&2
        tail -n 25 "$log" >&2
    done
    exit 1
}

fleet_cleanup() {
    local pid
    for pid in "${FLEET_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${FLEET_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    FLEET_PIDS=()
    if [ -n "${FLEET_DIR:-}" ] && [ "${FLEET_KEEP:-0}" != 1 ]; then
        rm -rf "$FLEET_DIR"
    fi
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
fleet_free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 30000))
        if ! ss -Htln "sport = :$port" | grep -q .; then
            echo "$port"
            return
        fi
    done
}

# Waits until $1 (a command) succeeds, at most $2 seconds; $3 says what for.
fleet_wait() {
    local deadline=$((SECONDS + $2))
    until eval "$1" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fleet_fail "timed out after $2 s waiting for $3"
        sleep 0.5
    done
}

# Builds the server and the CLI (framework-dependent, Release) once.
fleet_build() {
    fleet_log "building edgeupdater-server and the edgeupdater CLI"
    dotnet build src/EdgeUpdater.Server/EdgeUpdater.Server.csproj -c Release -nologo -v q >"$FLEET_DIR/build.log" 2>&1 \
        || fleet_fail "building the server failed"
    dotnet build src/EdgeUpdater.Cli/EdgeUpdater.Cli.csproj -c Release -nologo -v q >>"$FLEET_DIR/build.log" 2>&1 \
        || fleet_fail "building the CLI failed"
    FLEET_CLI=(dotnet src/EdgeUpdater.Cli/bin/Release/net10.0/edgeupdater.dll)
}

fleet_init() {
    FLEET_DIR=$(mktemp -d /tmp/edgeupdater-ci-XXXXXX)
    mkdir -p "$FLEET_DIR/keys" "$FLEET_DIR/images" "$FLEET_DIR/server" "$FLEET_DIR/mosquitto"
    trap fleet_cleanup EXIT
}

# Root and release keys, and key set v1 listing the release key.
fleet_make_keys() {
    "${FLEET_CLI[@]}" keys generate --out "$FLEET_DIR/keys/root.key" --role root >/dev/null 2>&1 || fleet_fail "keys generate root"
    "${FLEET_CLI[@]}" keys generate --out "$FLEET_DIR/keys/release.key" --role release >/dev/null 2>&1 || fleet_fail "keys generate release"
    "${FLEET_CLI[@]}" keys sign-keyset -o "$FLEET_DIR/keys/keyset-v1.json" --root "$FLEET_DIR/keys/root.pub" \
        --release "$FLEET_DIR/keys/release.pub" --sign "$FLEET_DIR/keys/root.key" >/dev/null 2>&1 || fleet_fail "keys sign-keyset"
}

# fleet_make_image NAME VERSION KIND: an EdgeUpdater image (config.json + root/) whose health check
# passes; prints its path.
fleet_make_image() {
    local name=$1 version=$2 kind=$3
    local source=$FLEET_DIR/images/src-$name-$version
    mkdir -p "$source/root/etc" "$source/root/usr/lib"
    echo "$name $version" > "$source/root/etc/release"
    # As in a real update, most of the content is the same in every version (1 MiB that does not
    # compress, the same bytes in each image) and some is new (64 KiB per version): a delta between
    # two versions is worth sending.
    [ -f "$FLEET_DIR/images/common.bin" ] || head -c 1048576 /dev/urandom > "$FLEET_DIR/images/common.bin"
    cp "$FLEET_DIR/images/common.bin" "$source/root/usr/lib/common.bin"
    head -c 65536 /dev/urandom > "$source/root/usr/lib/new-in-$version.bin"
    cat > "$source/config.json" <<EOF
{"name": "$name", "version": "$version", "target": "$kind",
 "healthCheck": {"type": "command", "command": ["/bin/sh", "-c", "exit 0"], "intervalSeconds": 1, "deadlineSeconds": 30}}
EOF
    local image=$FLEET_DIR/images/$name-$version.edgeupdater
    mksquashfs "$source" "$image" -noappend -quiet -no-progress -comp gzip -b 131072 >/dev/null || fleet_fail "mksquashfs $image"
    echo "$image"
}

# fleet_sign IMAGE NAME VERSION KIND HARDWARE ARCH: prints the manifest path.
fleet_sign() {
    local manifest=$1.manifest.json
    "${FLEET_CLI[@]}" release sign "$1" --key "$FLEET_DIR/keys/release.key" --keyset "$FLEET_DIR/keys/keyset-v1.json" \
        --name "$2" --version "$3" --target-kind "$4" --hardware "$5" --arch "$6" -o "$manifest" >/dev/null 2>&1 \
        || fleet_fail "release sign $1"
    echo "$manifest"
}

# Starts mosquitto on a free port with a password file holding the server's user.
fleet_start_mosquitto() {
    FLEET_MQTT_PORT=$(fleet_free_port)
    FLEET_MQTT_SERVER_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    local dir=$FLEET_DIR/mosquitto
    : > "$dir/passwd"
    mosquitto_passwd -b "$dir/passwd" fleet-server "$FLEET_MQTT_SERVER_PASSWORD"
    printf 'user fleet-server\ntopic readwrite edgeupdater/v1/#\n' > "$dir/acl"
    chmod 0600 "$dir/passwd" "$dir/acl"
    cat > "$dir/mosquitto.conf" <<EOF
listener $FLEET_MQTT_PORT 127.0.0.1
allow_anonymous false
password_file $dir/passwd
acl_file $dir/acl
persistence false
log_dest stderr
EOF
    [ "$(id -u)" -ne 0 ] || echo "user root" >> "$dir/mosquitto.conf"
    mosquitto -c "$dir/mosquitto.conf" >"$FLEET_DIR/mosquitto.log" 2>&1 &
    FLEET_PIDS+=($!)
    FLEET_MOSQUITTO_PID=$!
    fleet_wait "ss -Htln 'sport = :$FLEET_MQTT_PORT' | grep -q ." 20 "mosquitto on port $FLEET_MQTT_PORT"
}

# Starts edgeupdater-server on a free port, external broker = the mosquitto above.
fleet_start_server() {
    local port
    port=$(fleet_free_port)
    FLEET_HTTP=http://127.0.0.1:$port
    FLEET_TOKEN=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    dotnet src/EdgeUpdater.Server/bin/Release/net10.0/edgeupdater-server.dll --data-dir "$FLEET_DIR/server" \
        --urls "$FLEET_HTTP" --mqtt-mode External --mqtt-host 127.0.0.1 --mqtt-port "$FLEET_MQTT_PORT" \
        --mqtt-username fleet-server --mqtt-password "$FLEET_MQTT_SERVER_PASSWORD" \
        --trusted-root "$FLEET_DIR/keys/root.pub" --operator-token "$FLEET_TOKEN" >"$FLEET_DIR/server.log" 2>&1 &
    FLEET_PIDS+=($!)
    fleet_wait "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $FLEET_HTTP/v1/keysets)\" != 000 ]" 60 "edgeupdater-server at $FLEET_HTTP"
}

fleet_api() {
    curl -sS --fail-with-body -H "Authorization: Bearer $FLEET_TOKEN" "$@"
}

# fleet_publish IMAGE MANIFEST: uploads the key set chain and the release.
fleet_publish() {
    "${FLEET_CLI[@]}" publish "$1" --manifest "$2" --keyset "$FLEET_DIR/keys/keyset-v1.json" \
        --server "$FLEET_HTTP" --token "$FLEET_TOKEN" >>"$FLEET_DIR/cli.log" 2>&1 || fleet_fail "publish $1"
}

# fleet_register_device ID GROUP: issues MQTT credentials, adds them to mosquitto with the server's
# ACL, reloads mosquitto; sets FLEET_DEVICE_PASSWORD.
fleet_register_device() {
    local answer
    answer=$(fleet_api -X PUT -H 'Content-Type: application/json' -d "{\"group\": \"$2\"}" "$FLEET_HTTP/v1/devices/$1/credentials") \
        || fleet_fail "credentials for $1: $answer"
    FLEET_DEVICE_PASSWORD=$(printf '%s' "$answer" | jq -r '.password')
    if [ -z "$FLEET_DEVICE_PASSWORD" ] || [ "$FLEET_DEVICE_PASSWORD" = null ]; then
        fleet_fail "no password in $answer"
    fi
    mosquitto_passwd -b "$FLEET_DIR/mosquitto/passwd" "$1" "$FLEET_DEVICE_PASSWORD"
    fleet_api "$FLEET_HTTP/v1/mqtt/mosquitto-acl" > "$FLEET_DIR/mosquitto/acl" || fleet_fail "mosquitto ACL"
    printf '\nuser fleet-server\ntopic readwrite edgeupdater/v1/#\n' >> "$FLEET_DIR/mosquitto/acl"
    kill -HUP "$FLEET_MOSQUITTO_PID"
}

# fleet_device_json ID: the server's registry entry.
fleet_device_json() {
    fleet_api "$FLEET_HTTP/v1/devices/$1"
}

# fleet_write_device DIR ID GROUP HARDWARE: agent.json for a device with one system target "rootfs"
# on file slots DIR/slots/{a,b}, the U-Boot backend on DIR/boot (redundant env pair, fw_env.config
# from the layer's template) and the kernel command line in DIR/boot/cmdline; the reboot command
# creates DIR/boot/reboot-requested.
fleet_write_device() {
    local dir=$1 id=$2 group=$3 hardware=$4
    mkdir -p "$dir/slots" "$dir/boot" "$dir/state" "$dir/data" "$dir/run"
    printf 'eu_slot=a\nupgrade_available=0\nbootcount=0\nbootlimit=3\n' > "$dir/boot/env.txt"
    mkenvimage -r -s 0x4000 -o "$dir/boot/uboot.env" "$dir/boot/env.txt"
    mkenvimage -r -s 0x4000 -o "$dir/boot/uboot-redund.env" "$dir/boot/env.txt"
    sed -e "s|@EDGEUPDATER_UBOOT_ENV_FILE@|$dir/boot/uboot.env|" \
        -e "s|@EDGEUPDATER_UBOOT_ENV_REDUND_FILE@|$dir/boot/uboot-redund.env|" \
        -e "s|@EDGEUPDATER_UBOOT_ENV_SIZE@|0x4000|g" \
        yocto/meta-edgeupdater/recipes-bsp/edgeupdater-boot/files/fw_env.config > "$dir/boot/fw_env.config"
    echo "console=ttyAMA0 edgeupdater.slot=a" > "$dir/boot/cmdline"
    cat > "$dir/boot/reboot" <<EOF
#!/bin/sh
touch "$dir/boot/reboot-requested"
EOF
    chmod +x "$dir/boot/reboot"
    cat > "$dir/agent.json" <<EOF
{
  "deviceId": "$id",
  "group": "$group",
  "hardware": "$hardware",
  "server": { "url": "$FLEET_HTTP", "requestTimeoutSeconds": 60 },
  "broker": { "host": "127.0.0.1", "port": $FLEET_MQTT_PORT, "username": "$id", "password": "$FLEET_DEVICE_PASSWORD",
              "keepAliveSeconds": 10, "reconnectMinSeconds": 1, "reconnectMaxSeconds": 5 },
  "trust": { "rootKeys": ["$FLEET_DIR/keys/root.pub"], "keySets": ["$FLEET_DIR/keys/keyset-v1.json"] },
  "stateDirectory": "$dir/state",
  "dataDirectory": "$dir/data",
  "controlSocket": "$dir/run/agent.sock",
  "log": { "file": "$dir/agent-file.log", "level": "Debug" },
  "download": { "initialBackoffSeconds": 1, "maxBackoffSeconds": 2, "maxAttempts": 2, "reserveBytes": 0 },
  "health": { "defaultDeadlineSeconds": 60 },
  "targets": [
    { "name": "rootfs", "kind": "system",
      "slots": { "a": "$dir/slots/a.img", "b": "$dir/slots/b.img" },
      "bootloader": { "backend": "uboot", "fwEnvConfig": "$dir/boot/fw_env.config" },
      "rebootCommand": ["$dir/boot/reboot"],
      "kernelCommandLine": "$dir/boot/cmdline" }
  ]
}
EOF
}

# fleet_power_on DIR: what boot.scr does at power-on (docs/bootloader.md), on the device's U-Boot
# environment: count a trial boot or fall back, then put the booted slot on the command line.
fleet_power_on() {
    local dir=$1 env slot upgrade count limit
    env=$(fw_printenv -c "$dir/boot/fw_env.config")
    slot=$(printf '%s\n' "$env" | sed -n 's/^eu_slot=//p')
    upgrade=$(printf '%s\n' "$env" | sed -n 's/^upgrade_available=//p')
    count=$(printf '%s\n' "$env" | sed -n 's/^bootcount=//p')
    limit=$(printf '%s\n' "$env" | sed -n 's/^bootlimit=//p')
    case "$slot" in a | b) ;; *) slot=a ;; esac
    if [ "$upgrade" = 1 ]; then
        if [ "${count:-0}" -ge "${limit:-3}" ]; then
            if [ "$slot" = a ]; then slot=b; else slot=a; fi
            printf 'eu_slot=%s\nupgrade_available=0\nbootcount=0\n' "$slot" > "$dir/boot/script"
        else
            printf 'bootcount=%s\n' $(( ${count:-0} + 1 )) > "$dir/boot/script"
        fi
        fw_setenv -c "$dir/boot/fw_env.config" -s "$dir/boot/script"
    fi
    echo "console=ttyAMA0 edgeupdater.slot=$slot" > "$dir/boot/cmdline"
    rm -f "$dir/boot/reboot-requested"
    echo "$slot"
}
