# EdgeUpdater A/B boot script for U-Boot (hush). Compiled into boot.scr with
#   mkimage -A arm64 -O linux -T script -C none -d boot.cmd boot.scr
# and run by U-Boot's standard boot / distro boot from the boot partition, which sets devtype,
# devnum (and distro_bootpart) for the device it was found on.
#
# Slot selection and boot counting follow docs/bootloader.md; the agent's U-Boot backend writes the
# same variables with fw_setenv:
#   eu_slot            a | b: the slot to boot
#   upgrade_available  1 while eu_slot is on trial
#   bootcount          trial boots attempted so far (this script increments it)
#   bootlimit          trial boots allowed (1..9, default 3)
# Counting is done here, not by U-Boot's CONFIG_BOOTCOUNT_LIMIT (which would count a second time).
# Numbers stay single decimal digits: U-Boot's test reads them as decimal, setexpr would print hex,
# so the increment is spelled out instead of computed.
#
# Board settings (environment; defaults in brackets): eu_part_a [2], eu_part_b [3] partition numbers
# of the slots on ${devtype} ${devnum}; eu_kernel [Image] and eu_initramfs
# [edgeupdater-initramfs.cpio.gz] under /root/boot of the slot image; fdtfile (optional, loaded from
# /root/boot, otherwise U-Boot's own device tree is passed); eu_cmdline (extra kernel arguments).

if test -z "${bootlimit}"; then setenv bootlimit 3; fi
if test "${eu_slot}" != "a" -a "${eu_slot}" != "b"; then setenv eu_slot a; fi

if test "${upgrade_available}" = "1"; then
    if test "${bootcount}" -ge "${bootlimit}"; then setenv eu_next
    elif test -z "${bootcount}" -o "${bootcount}" = "0"; then setenv eu_next 1
    elif test "${bootcount}" = "1"; then setenv eu_next 2
    elif test "${bootcount}" = "2"; then setenv eu_next 3
    elif test "${bootcount}" = "3"; then setenv eu_next 4
    elif test "${bootcount}" = "4"; then setenv eu_next 5
    elif test "${bootcount}" = "5"; then setenv eu_next 6
    elif test "${bootcount}" = "6"; then setenv eu_next 7
    elif test "${bootcount}" = "7"; then setenv eu_next 8
    elif test "${bootcount}" = "8"; then setenv eu_next 9
    else setenv eu_next
    fi
    if test -n "${eu_next}"; then
        setenv bootcount "${eu_next}"
        echo "EdgeUpdater: trial boot ${bootcount} of ${bootlimit} for slot ${eu_slot}"
    else
        echo "EdgeUpdater: slot ${eu_slot} used up its ${bootlimit} trial boots, falling back"
        if test "${eu_slot}" = "a"; then setenv eu_slot b; else setenv eu_slot a; fi
        setenv upgrade_available 0
        setenv bootcount 0
    fi
    setenv eu_next
    saveenv
fi

if test -z "${eu_part_a}"; then setenv eu_part_a 2; fi
if test -z "${eu_part_b}"; then setenv eu_part_b 3; fi
if test -z "${eu_kernel}"; then setenv eu_kernel Image; fi
if test -z "${eu_initramfs}"; then setenv eu_initramfs edgeupdater-initramfs.cpio.gz; fi

# Second pass only when the first slot could not be loaded: a trial slot falls back for good (as if
# its trial boots were used up), a committed slot is swapped for this boot only.
for eu_pass in first second; do
    if test "${eu_slot}" = "b"; then setenv eu_part "${eu_part_b}"; else setenv eu_part "${eu_part_a}"; fi
    setenv bootargs "${eu_cmdline} edgeupdater.slot=${eu_slot}"
    echo "EdgeUpdater: booting slot ${eu_slot} from ${devtype} ${devnum}:${eu_part}"
    if load ${devtype} ${devnum}:${eu_part} ${kernel_addr_r} /root/boot/${eu_kernel}; then
        if load ${devtype} ${devnum}:${eu_part} ${ramdisk_addr_r} /root/boot/${eu_initramfs}; then
            setenv eu_initrd_size "${filesize}"
            if test -n "${fdtfile}"; then
                load ${devtype} ${devnum}:${eu_part} ${fdt_addr_r} /root/boot/${fdtfile}
                setenv eu_fdt "${fdt_addr_r}"
            else
                setenv eu_fdt "${fdtcontroladdr}"
            fi
            booti ${kernel_addr_r} ${ramdisk_addr_r}:${eu_initrd_size} ${eu_fdt}
        fi
    fi
    echo "EdgeUpdater: slot ${eu_slot} could not be loaded or booted"
    if test "${upgrade_available}" = "1"; then
        if test "${eu_slot}" = "a"; then setenv eu_slot b; else setenv eu_slot a; fi
        setenv upgrade_available 0
        setenv bootcount 0
        saveenv
    else
        if test "${eu_slot}" = "a"; then setenv eu_slot b; else setenv eu_slot a; fi
    fi
done
echo "EdgeUpdater: neither slot could be booted"
