SUMMARY = "Example EdgeUpdater device image: a minimal systemd system with the agent"
DESCRIPTION = "core-image-minimal plus the EdgeUpdater agent and its configuration, built as an \
EdgeUpdater image (config.json + root/ SquashFS) and as a wic A/B disk image. Copy it as the start \
of a product image."
LICENSE = "MIT"

inherit features_check
REQUIRED_DISTRO_FEATURES = "edgeupdater systemd"

IMAGE_INSTALL = "packagegroup-core-boot edgeupdater-agent ${EDGEUPDATER_BOOT_RECIPE} ${CORE_IMAGE_EXTRA_INSTALL}"
IMAGE_LINGUAS = ""

inherit core-image edgeupdater-image
