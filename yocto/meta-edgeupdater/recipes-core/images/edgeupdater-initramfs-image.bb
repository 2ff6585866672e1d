SUMMARY = "EdgeUpdater initramfs: mounts the booted A/B slot (SquashFS) under its persistent overlay"
DESCRIPTION = "A small busybox initramfs whose /init mounts the slot named by edgeupdater.slot= on \
the kernel command line and switch_roots into it. edgeupdater-image.bbclass copies it into the root \
filesystem's /boot, from where the boot scripts load it together with the kernel of the same slot."
LICENSE = "MIT"

inherit features_check
REQUIRED_DISTRO_FEATURES = "edgeupdater"

# Kernel modules for when squashfs, overlay or the data filesystem are modules rather than built in.
EDGEUPDATER_INITRAMFS_MODULES ?= ""

PACKAGE_INSTALL = "edgeupdater-initramfs busybox ${EDGEUPDATER_INITRAMFS_MODULES}"

# An initramfs: no package manager data, locales or extra features.
IMAGE_FEATURES = ""
IMAGE_LINGUAS = ""
NO_RECOMMENDATIONS = "1"
IMAGE_FSTYPES = "cpio.gz"
# The image class looks for ${PN}-${MACHINE}.cpio.gz, as the kernel does for INITRAMFS_IMAGE.
IMAGE_NAME_SUFFIX ?= ""
IMAGE_ROOTFS_SIZE = "8192"
IMAGE_ROOTFS_EXTRA_SPACE = "0"

inherit image
