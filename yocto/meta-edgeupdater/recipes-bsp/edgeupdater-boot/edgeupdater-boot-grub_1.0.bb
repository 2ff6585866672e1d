SUMMARY = "EdgeUpdater GRUB environment block (A/B slots, boot counting)"
DESCRIPTION = "Deploys the initial grubenv that wic/edgeupdater-grub.cfg reads and updates \
(slot a committed, no trial pending) for the EFI system partition; the package pulls in \
grub-editenv, which the agent's GRUB backend runs."
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

inherit features_check deploy
REQUIRED_DISTRO_FEATURES = "edgeupdater"

# Trial boots allowed before GRUB falls back (1..9, docs/bootloader.md).
EDGEUPDATER_BOOTLIMIT ?= "3"

do_configure[noexec] = "1"

# Writes a GRUB environment block: the header line, one name=value line per argument, padded with
# '#' to GRUB's fixed 1024 bytes (the layout grub-editenv writes and GRUB's save_env rewrites in place).
edgeupdater_make_grubenv() {
    output="$1"
    shift
    {
        printf '# GRUB Environment Block\n'
        for assignment in "$@"; do
            printf '%s\n' "$assignment"
        done
    } > "$output"
    size=$(stat -c %s "$output")
    if [ "$size" -gt 1024 ]; then
        bbfatal "the GRUB environment block holds 1024 bytes, the variables need $size"
    fi
    head -c $(expr 1024 - $size) /dev/zero | tr '\0' '#' >> "$output"
}

do_compile() {
    edgeupdater_make_grubenv ${B}/grubenv eu_slot=a upgrade_available=0 bootcount=0 bootlimit=${EDGEUPDATER_BOOTLIMIT}
}

do_install[noexec] = "1"

do_deploy() {
    install -m 0644 ${B}/grubenv ${DEPLOYDIR}/grubenv
}
addtask deploy after do_compile before do_build

ALLOW_EMPTY:${PN} = "1"
RDEPENDS:${PN} = "grub-editenv"
PACKAGE_ARCH = "${MACHINE_ARCH}"
