# Makes an image recipe produce an EdgeUpdater image: one SquashFS file holding config.json and the
# root filesystem under root/, the unit the server stores, diffs and ships and the agent writes into
# an A/B slot. Inherit it from an image recipe:
#
#   inherit core-image edgeupdater-image
#
# Output: ${IMAGE_LINK_NAME}.edgeupdater in DEPLOY_DIR_IMAGE (IMAGE_FSTYPES type "edgeupdater"),
# ready for `edgeupdater release publish` and for the wic layouts of this layer, which copy it into
# slot A. The rootfs also gets the EdgeUpdater initramfs under /boot, so that the boot scripts load
# kernel and initramfs from the slot they boot and both change with every update.

# config.json (docs/image-config.md): every field of the JSON object in EDGEUPDATER_IMAGE_CONFIG (a
# file path) when set, completed with name, version, target "system" and the machine and architecture
# it is compatible with, where that file does not say otherwise. The name ([a-z0-9][a-z0-9._-]*) and
# version (SemVer) are what `edgeupdater release sign` puts into the manifest.
EDGEUPDATER_IMAGE_NAME ?= "${IMAGE_BASENAME}"
EDGEUPDATER_IMAGE_VERSION ?= "${DISTRO_VERSION}"
EDGEUPDATER_IMAGE_HARDWARE ?= "${MACHINE}"
EDGEUPDATER_IMAGE_CONFIG ?= ""

# gzip is the codec U-Boot's, GRUB's and every kernel's SquashFS support all read; fixed-size blocks
# are what the delta matches, so keep the block size stable between releases.
EDGEUPDATER_SQUASHFS_ARGS ?= "-comp gzip -b 131072"

# Partition sizes (MiB) of the wic layouts in wic/. Both slots have the same size: the image must fit,
# with room for the releases that follow.
EDGEUPDATER_SLOT_SIZE_MB ?= "512"
EDGEUPDATER_BOOT_SIZE_MB ?= "64"
EDGEUPDATER_DATA_SIZE_MB ?= "512"

# The recipe that deploys the boot partition's files: edgeupdater-boot-uboot (boot.scr, with
# IMAGE_BOOT_FILES = "boot.scr" and WKS_FILE = "edgeupdater-ab-uboot.wks.in") or edgeupdater-boot-grub
# (grubenv, with WKS_FILE = "edgeupdater-ab-efi.wks.in").
EDGEUPDATER_BOOT_RECIPE ?= "edgeupdater-boot-uboot"

EDGEUPDATER_INITRAMFS_IMAGE ?= "edgeupdater-initramfs-image"
EDGEUPDATER_INITRAMFS_NAME ?= "edgeupdater-initramfs.cpio.gz"

# The boot partition carries the U-Boot environment (or grubenv) the agent edits.
EDGEUPDATER_BOOT_FSTAB ?= "PARTLABEL=boot /boot vfat defaults,noatime,nofail 0 0"

IMAGE_TYPES += "edgeupdater"
IMAGE_FSTYPES:append = " edgeupdater"
IMAGE_TYPEDEP:wic:append = " edgeupdater"
IMAGE_INSTALL:append = " kernel-image"

do_image_edgeupdater[depends] += "squashfs-tools-native:do_populate_sysroot"
do_rootfs[depends] += "${EDGEUPDATER_INITRAMFS_IMAGE}:do_image_complete"
do_image_wic[depends] += "${EDGEUPDATER_BOOT_RECIPE}:do_deploy"

IMAGE_CMD:edgeupdater = "edgeupdater_make_image ${IMAGE_ROOTFS} ${WORKDIR}/edgeupdater-image/config.json \
    ${IMGDEPLOYDIR}/${IMAGE_NAME}${IMAGE_NAME_SUFFIX}.edgeupdater"

# Streams the rootfs as a tar whose members are renamed to root/..., followed by config.json, into
# mksquashfs: one pass, no copy of the rootfs, ownership and xattrs as pseudo recorded them.
# Arguments: rootfs directory, config.json path (the file must be named config.json), output.
edgeupdater_make_image() {
    rootfs="$1"
    config="$2"
    output="$3"
    if [ "$(basename "$config")" != "config.json" ]; then
        bbfatal "edgeupdater_make_image: the config file must be named config.json, got $config"
    fi
    configdir=$(cd "$(dirname "$config")" && pwd)
    rm -f "$output"
    # A tar that fails half way leaves a truncated archive, which mksquashfs refuses. Times newer
    # than the build's reproducible timestamp (config.json, written just now) are clamped to it, and
    # SOURCE_DATE_EPOCH makes mksquashfs use it for the image and its root directory, so that the
    # same rootfs always gives the same image bytes.
    tar --create --file=- --numeric-owner --sort=name --xattrs --xattrs-include='*' \
        --mtime=@${REPRODUCIBLE_TIMESTAMP_ROOTFS} --clamp-mtime \
        --transform='s,^\.$,root,S' --transform='s,^\./,root/,S' \
        --directory="$rootfs" . --directory="$configdir" config.json \
        | SOURCE_DATE_EPOCH=${REPRODUCIBLE_TIMESTAMP_ROOTFS} mksquashfs - "$output" -tar -noappend \
            -quiet -no-progress -root-mode 0755 -root-uid 0 -root-gid 0 ${EDGEUPDATER_SQUASHFS_ARGS}
    size=$(stat -c %s "$output")
    limit=$(expr ${EDGEUPDATER_SLOT_SIZE_MB} \* 1048576)
    if [ "$size" -gt "$limit" ]; then
        bbfatal "EdgeUpdater image $output is $size bytes; the slots hold ${EDGEUPDATER_SLOT_SIZE_MB} MiB (EDGEUPDATER_SLOT_SIZE_MB)"
    fi
}

python edgeupdater_write_config() {
    import json
    import os

    config = {}
    source = d.getVar('EDGEUPDATER_IMAGE_CONFIG')
    if source:
        try:
            with open(source, encoding='utf-8') as f:
                config = json.load(f)
        except (OSError, ValueError) as error:
            bb.fatal("EDGEUPDATER_IMAGE_CONFIG %s: %s" % (source, error))
        if not isinstance(config, dict):
            bb.fatal("EDGEUPDATER_IMAGE_CONFIG %s: a JSON object was expected" % source)
    config.setdefault('name', d.getVar('EDGEUPDATER_IMAGE_NAME'))
    config.setdefault('version', d.getVar('EDGEUPDATER_IMAGE_VERSION'))
    config.setdefault('target', 'system')
    compatible = config.setdefault('compatible', {})
    hardware = (d.getVar('EDGEUPDATER_IMAGE_HARDWARE') or '').split()
    if hardware:
        compatible.setdefault('hardware', hardware)
    # The agent's names for the CPU architectures (docs/image-config.md).
    architectures = {'aarch64': 'arm64', 'arm': 'arm', 'x86_64': 'x64', 'i686': 'x86', 'i586': 'x86', 'riscv64': 'riscv64'}
    architecture = architectures.get(d.getVar('TARGET_ARCH'))
    if architecture:
        compatible.setdefault('architectures', [architecture])

    path = os.path.join(d.getVar('WORKDIR'), 'edgeupdater-image', 'config.json')
    bb.utils.mkdirhier(os.path.dirname(path))
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write('\n')
}
do_image_edgeupdater[prefuncs] += "edgeupdater_write_config"
do_image_edgeupdater[vardeps] += "EDGEUPDATER_IMAGE_NAME EDGEUPDATER_IMAGE_VERSION EDGEUPDATER_IMAGE_HARDWARE EDGEUPDATER_IMAGE_CONFIG"
do_image_edgeupdater[file-checksums] += "${@'%s:True' % d.getVar('EDGEUPDATER_IMAGE_CONFIG') if d.getVar('EDGEUPDATER_IMAGE_CONFIG') else ''}"

# Kernel and initramfs travel inside the slot image; the boot partition holds only the boot script.
edgeupdater_install_initramfs() {
    initramfs="${DEPLOY_DIR_IMAGE}/${EDGEUPDATER_INITRAMFS_IMAGE}-${MACHINE}.cpio.gz"
    if [ ! -e "$initramfs" ]; then
        bbfatal "$initramfs is missing: the initramfs image ${EDGEUPDATER_INITRAMFS_IMAGE} must build cpio.gz"
    fi
    install -d ${IMAGE_ROOTFS}/boot
    install -m 0644 "$initramfs" ${IMAGE_ROOTFS}/boot/${EDGEUPDATER_INITRAMFS_NAME}
}

edgeupdater_add_boot_fstab() {
    if [ -n "${EDGEUPDATER_BOOT_FSTAB}" ]; then
        install -d ${IMAGE_ROOTFS}/boot
        echo "${EDGEUPDATER_BOOT_FSTAB}" >> ${IMAGE_ROOTFS}${sysconfdir}/fstab
    fi
}

# The agent's configuration recipe leaves this marker when the example root key is installed.
python edgeupdater_check_root_key() {
    import os
    marker = os.path.join(d.getVar('IMAGE_ROOTFS'), d.getVar('sysconfdir').lstrip('/'),
                          'edgeupdater', 'EXAMPLE-ROOT-KEY')
    if os.path.exists(marker):
        bb.warn("%s pins the EXAMPLE EdgeUpdater root key of meta-edgeupdater: its devices trust nobody "
                "you control. Replace agent.json and trust/ of edgeupdater-conf with your own root key "
                "and key set (meta-edgeupdater/README.md)." % d.getVar('PN'))
}

ROOTFS_POSTPROCESS_COMMAND += "edgeupdater_install_initramfs edgeupdater_add_boot_fstab edgeupdater_check_root_key"
