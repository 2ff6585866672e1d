SUMMARY = "EdgeUpdater U-Boot boot script (A/B slots, boot counting) and fw_env.config"
DESCRIPTION = "boot.scr selects the A/B slot with boot counting as in docs/bootloader.md and boots \
kernel and initramfs from the slot's SquashFS image; deployed for the boot partition. The package \
installs /etc/fw_env.config so that fw_setenv and the agent edit the environment U-Boot reads."
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

inherit features_check deploy kernel-arch
REQUIRED_DISTRO_FEATURES = "edgeupdater"

DEPENDS = "u-boot-tools-native"

SRC_URI = "file://boot.cmd file://fw_env.config"
S = "${WORKDIR}"

# Where Linux sees the two environment copies (the boot partition is mounted at /boot) and their size,
# which must equal U-Boot's CONFIG_ENV_SIZE.
EDGEUPDATER_UBOOT_ENV_FILE ?= "/boot/uboot.env"
EDGEUPDATER_UBOOT_ENV_REDUND_FILE ?= "/boot/uboot-redund.env"
EDGEUPDATER_UBOOT_ENV_SIZE ?= "0x4000"

do_configure[noexec] = "1"

do_compile() {
    mkimage -A ${UBOOT_ARCH} -O linux -T script -C none -n "EdgeUpdater A/B boot" \
        -d ${WORKDIR}/boot.cmd ${B}/boot.scr
    sed -e 's|@EDGEUPDATER_UBOOT_ENV_FILE@|${EDGEUPDATER_UBOOT_ENV_FILE}|' \
        -e 's|@EDGEUPDATER_UBOOT_ENV_REDUND_FILE@|${EDGEUPDATER_UBOOT_ENV_REDUND_FILE}|' \
        -e 's|@EDGEUPDATER_UBOOT_ENV_SIZE@|${EDGEUPDATER_UBOOT_ENV_SIZE}|g' \
        ${WORKDIR}/fw_env.config > ${B}/fw_env.config
}

do_install() {
    install -d ${D}${sysconfdir}
    install -m 0644 ${B}/fw_env.config ${D}${sysconfdir}/fw_env.config
}

do_deploy() {
    install -m 0644 ${B}/boot.scr ${DEPLOYDIR}/boot.scr
}
addtask deploy after do_compile before do_build

FILES:${PN} = "${sysconfdir}/fw_env.config"
CONFFILES:${PN} = "${sysconfdir}/fw_env.config"
RDEPENDS:${PN} = "libubootenv-bin"
PACKAGE_ARCH = "${MACHINE_ARCH}"
