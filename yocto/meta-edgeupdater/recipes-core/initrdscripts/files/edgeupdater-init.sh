#!/bin/sh
# EdgeUpdater initramfs /init: mounts the slot the bootloader chose as SquashFS, puts the slot's
# persistent overlay from the data partition on top and switch_roots into it (docs/yocto.md).
#
# Kernel command line:
#   edgeupdater.slot=a|b          the booted slot (set by the boot script; required)
#   edgeupdater.root_a=DEV        slot A  [PARTLABEL=root_a]
#   edgeupdater.root_b=DEV        slot B  [PARTLABEL=root_b]
#   edgeupdater.data=DEV          data partition  [PARTLABEL=data]
#   edgeupdater.datafstype=TYPE   [ext4]
#   edgeupdater.rootwait=SECONDS  how long to wait for the devices [10]
#   edgeupdater.debug             on failure open a shell instead of rebooting
#   init=PATH                     [/sbin/init]
# DEV is a /dev path or PARTLABEL=<GPT partition name>.
#
# Layout on the data partition (mounted at /data in the booted system):
#   edgeupdater/rootfs/<slot>/upper, .../work   the slot's overlay; the agent empties it when it
#                                              writes a new image into that slot
#
# Test hooks, never set on a device: EDGEUPDATER_CMDLINE (a file read instead of /proc/cmdline),
# EDGEUPDATER_NEWROOT, EDGEUPDATER_RUNDIR, EDGEUPDATER_SYSFS, and EDGEUPDATER_NO_SWITCH_ROOT=1, which
# stops with everything mounted instead of calling switch_root.

set -u

cmdline_file=${EDGEUPDATER_CMDLINE:-/proc/cmdline}
newroot=${EDGEUPDATER_NEWROOT:-/newroot}
rundir=${EDGEUPDATER_RUNDIR:-/run/edgeupdater-boot}
sysfs=${EDGEUPDATER_SYSFS:-/sys}

log() {
    echo "edgeupdater-init: $*" >&2
}

# A failed boot must end in a reset, so that on a trial boot the bootloader counts it and eventually
# falls back to the other slot. edgeupdater.debug keeps the board at a shell instead.
fail() {
    log "error: $*"
    if [ -n "${EDGEUPDATER_NO_SWITCH_ROOT:-}" ]; then
        exit 1
    fi
    if [ "$debug" = 1 ]; then
        log "edgeupdater.debug is set: starting a shell"
        exec sh
    fi
    log "rebooting in 5 seconds"
    sleep 5
    reboot -f
    exit 1
}

mount_early() {
    [ -n "${EDGEUPDATER_NO_SWITCH_ROOT:-}" ] && return 0
    mkdir -p /proc /sys /dev /run
    [ -e /proc/self ] || mount -t proc proc /proc
    [ -d /sys/class ] || mount -t sysfs sysfs /sys
    [ -e /dev/null ] || mount -t devtmpfs devtmpfs /dev
    mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
}

# Value of key=value on the kernel command line, or $2 when absent.
cmdline_value() {
    value=$2
    for word in $cmdline; do
        case "$word" in
            "$1="*) value=${word#*=} ;;
        esac
    done
    echo "$value"
}

cmdline_flag() {
    for word in $cmdline; do
        [ "$word" = "$1" ] && return 0
    done
    return 1
}

# Prints the /dev node for DEV (a /dev path or PARTLABEL=name); fails when none or several match.
resolve_device() {
    case "$1" in
        /dev/*)
            [ -b "$1" ] && echo "$1"
            return 0
            ;;
        PARTLABEL=*)
            label=${1#PARTLABEL=}
            found=""
            for uevent in "$sysfs"/class/block/*/uevent; do
                [ -f "$uevent" ] || continue
                if grep -qx "PARTNAME=$label" "$uevent"; then
                    name=$(sed -n 's/^DEVNAME=//p' "$uevent")
                    if [ -n "$found" ]; then
                        log "error: partition label $label is on both /dev/$found and /dev/$name"
                        echo "ambiguous"
                        return 0
                    fi
                    found=$name
                fi
            done
            [ -n "$found" ] && [ -b "/dev/$found" ] && echo "/dev/$found"
            return 0
            ;;
        *)
            log "error: unsupported device specification '$1' (use /dev/... or PARTLABEL=...)"
            echo "invalid"
            return 0
            ;;
    esac
}

# Waits up to $rootwait seconds for DEV to appear; prints its /dev node.
wait_for_device() {
    waited=0
    while :; do
        device=$(resolve_device "$1")
        case "$device" in
            ambiguous | invalid) return 1 ;;
            /dev/*) echo "$device"; return 0 ;;
        esac
        if [ "$waited" -ge "$rootwait" ]; then
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
}

debug=0
mount_early
[ -r "$cmdline_file" ] || fail "cannot read the kernel command line from $cmdline_file"
cmdline=$(cat "$cmdline_file")
cmdline_flag edgeupdater.debug && debug=1

slot=$(cmdline_value edgeupdater.slot "")
case "$slot" in
    a | b) ;;
    "") fail "edgeupdater.slot is missing from the kernel command line (the boot script sets it)" ;;
    *) fail "edgeupdater.slot=$slot is not a slot (expected a or b)" ;;
esac
slot_spec=$(cmdline_value "edgeupdater.root_$slot" "PARTLABEL=root_$slot")
data_spec=$(cmdline_value edgeupdater.data "PARTLABEL=data")
data_fstype=$(cmdline_value edgeupdater.datafstype ext4)
rootwait=$(cmdline_value edgeupdater.rootwait 10)
case "$rootwait" in
    '' | *[!0-9]*) fail "edgeupdater.rootwait=$rootwait is not a number of seconds" ;;
esac
init=$(cmdline_value init /sbin/init)

slot_device=$(wait_for_device "$slot_spec") || fail "slot $slot device $slot_spec not found within ${rootwait}s"
data_device=$(wait_for_device "$data_spec") || fail "data device $data_spec not found within ${rootwait}s"
log "slot $slot on $slot_device, data on $data_device"

image=$rundir/image
data=$rundir/data
mkdir -p "$image" "$data" "$newroot" || fail "cannot create mount points under $rundir"

mount -t squashfs -o ro "$slot_device" "$image" || fail "cannot mount slot $slot ($slot_device) as SquashFS"
if [ ! -f "$image/config.json" ] || [ ! -d "$image/root" ]; then
    fail "slot $slot ($slot_device) is not an EdgeUpdater image: config.json and root/ expected at its top"
fi

mount -t "$data_fstype" -o rw,noatime "$data_device" "$data" \
    || fail "cannot mount the data partition $data_device ($data_fstype)"
overlay=$data/edgeupdater/rootfs/$slot
mkdir -p "$overlay/upper" "$overlay/work" || fail "cannot create $overlay/upper and $overlay/work"

mount -t overlay overlay -o "lowerdir=$image/root,upperdir=$overlay/upper,workdir=$overlay/work" "$newroot" \
    || fail "cannot mount the overlay of slot $slot on $newroot"

# The data partition stays reachable at /data; the image mount stays referenced by the overlay.
mkdir -p "$newroot/data" || fail "cannot create /data in the new root"
mount --move "$data" "$newroot/data" || fail "cannot move the data partition to /data"

[ -x "$newroot$init" ] || [ -L "$newroot$init" ] || fail "$init does not exist in slot $slot"

if [ -n "${EDGEUPDATER_NO_SWITCH_ROOT:-}" ]; then
    log "slot $slot ready at $newroot (EDGEUPDATER_NO_SWITCH_ROOT: not switching)"
    exit 0
fi

for fs in /dev /proc /sys /run; do
    grep -q "^[^ ]* $fs " /proc/mounts || continue
    mkdir -p "$newroot$fs"
    mount --move "$fs" "$newroot$fs" || fail "cannot move $fs into the new root"
done
exec switch_root "$newroot" "$init"
