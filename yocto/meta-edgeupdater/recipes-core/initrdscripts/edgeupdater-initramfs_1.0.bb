SUMMARY = "EdgeUpdater initramfs init: boots the A/B slot as SquashFS under a persistent overlay"
DESCRIPTION = "The /init of the EdgeUpdater initramfs. It mounts the slot named by edgeupdater.slot= \
on the kernel command line as SquashFS, puts the slot's overlay from the data partition on top, moves \
the data partition to /data and switch_roots into the result."
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

inherit features_check
REQUIRED_DISTRO_FEATURES = "edgeupdater"

SRC_URI = "file://edgeupdater-init.sh"
S = "${WORKDIR}"

do_install() {
    install -m 0755 ${WORKDIR}/edgeupdater-init.sh ${D}/init
    install -d ${D}/dev ${D}/proc ${D}/sys ${D}/run ${D}/newroot
}

FILES:${PN} = "/init /dev /proc /sys /run /newroot"
# busybox provides sh, mount (squashfs, overlay, --move), switch_root, grep, sed, sleep and reboot.
RDEPENDS:${PN} = "busybox"
