# Active only with "edgeupdater" in DISTRO_FEATURES (see conf/layer.conf).
require ${@bb.utils.contains('DISTRO_FEATURES', 'edgeupdater', 'u-boot-edgeupdater.inc', '', d)}
