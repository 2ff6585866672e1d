SUMMARY = "EdgeUpdater agent: signed over-the-air A/B updates with health check and rollback"
DESCRIPTION = "The EdgeUpdater device daemon, a Native AOT binary installed from the release tarball \
built by scripts/publish-agent.sh (binary, libsodium.so, systemd unit, example config, SHA256SUMS). \
Nothing is compiled here and nothing is downloaded outside do_fetch."
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://LICENSE;md5=0401bb00d7b36a4405cdb58f443cc8d5"

inherit features_check systemd
REQUIRED_DISTRO_FEATURES = "edgeupdater systemd"

# Release tarballs exist for these two; the binary is linked against glibc.
COMPATIBLE_HOST = "(aarch64|x86_64).*-linux"
COMPATIBLE_HOST:libc-musl = "null"

EDGEUPDATER_AGENT_ARCH = "unsupported"
EDGEUPDATER_AGENT_ARCH:aarch64 = "arm64"
EDGEUPDATER_AGENT_ARCH:x86-64 = "x64"

# Where the release tarballs are: https://... (checked against the sha256 sums below) or file:///dir.
EDGEUPDATER_RELEASE_URI ??= ""

SRC_URI = "${EDGEUPDATER_RELEASE_URI}/edgeupdater-agent-${PV}-linux-${EDGEUPDATER_AGENT_ARCH}.tar.gz;name=${EDGEUPDATER_AGENT_ARCH}"
# Written by scripts/publish-agent.sh --update-recipe for the tarballs it built.
SRC_URI[arm64.sha256sum] = "056c40563c6e9ba73cf9fb7b6e6d5dd1a5ccb987b9e572c70c8c9abd50fcb11c"
SRC_URI[x64.sha256sum] = "f820357516622940b868b55a4d15b342a1f58c444b34cf28f4cfa7483c2cf1ee"

S = "${WORKDIR}/edgeupdater-agent-${PV}-linux-${EDGEUPDATER_AGENT_ARCH}"

python () {
    if not d.getVar('EDGEUPDATER_RELEASE_URI'):
        raise bb.parse.SkipRecipe("EDGEUPDATER_RELEASE_URI is not set: point it at the directory holding "
                                  "edgeupdater-agent-%s-linux-*.tar.gz (a web or file: URL); "
                                  "see meta-edgeupdater/README.md" % d.getVar('PV'))
}

do_configure[noexec] = "1"
do_compile[noexec] = "1"

# The release tarball lists the SHA-256 of every file it ships: check them before installing.
do_install() {
    (cd ${S} && sha256sum --check --strict --quiet SHA256SUMS)
    install -d ${D}${libexecdir}/edgeupdater ${D}${bindir}
    install -m 0755 ${S}/edgeupdater-agent ${D}${libexecdir}/edgeupdater/edgeupdater-agent
    # NSec loads libsodium from the executable's own directory.
    install -m 0644 ${S}/libsodium.so ${D}${libexecdir}/edgeupdater/libsodium.so
    ln -rs ${D}${libexecdir}/edgeupdater/edgeupdater-agent ${D}${bindir}/edgeupdater-agent
    install -d ${D}${systemd_system_unitdir}
    install -m 0644 ${S}/edgeupdater-agent.service ${D}${systemd_system_unitdir}/edgeupdater-agent.service
    # Feeds the agent's verdict on a trial boot into systemd's boot assessment (boot-complete.target).
    install -d ${D}${systemd_system_unitdir}/boot-complete.target.d
    install -m 0644 ${WORKDIR}/boot-complete-edgeupdater.conf \
        ${D}${systemd_system_unitdir}/boot-complete.target.d/edgeupdater.conf
}

SRC_URI += "file://boot-complete-edgeupdater.conf"

SYSTEMD_SERVICE:${PN} = "edgeupdater-agent.service"
SYSTEMD_AUTO_ENABLE = "enable"

FILES:${PN} += "${libexecdir}/edgeupdater ${systemd_system_unitdir}/boot-complete.target.d"

# Loaded at run time with dlopen, so the packager cannot see them: OpenSSL (.NET's random numbers and
# TLS) and the SquashFS codecs (zlib always: images are gzip by default; the others only for images
# or deltas that use them). The configuration is a separate recipe that products replace
# (edgeupdater-conf). Mounts, loop devices and namespaces are system calls, not tools; the
# bootloader tools come with edgeupdater-boot-uboot (libubootenv-bin) or -grub (grub-editenv).
RDEPENDS:${PN} = "libssl3 libcrypto3 zlib edgeupdater-conf"
RRECOMMENDS:${PN} = "liblzma libzstd liblz4 lzo kernel-module-squashfs kernel-module-overlay kernel-module-loop"

# Prebuilt and already stripped by the .NET publish; its libsodium.so is private to it.
INHIBIT_PACKAGE_STRIP = "1"
INHIBIT_PACKAGE_DEBUG_SPLIT = "1"
INHIBIT_SYSROOT_STRIP = "1"
EXCLUDE_FROM_SHLIBS = "1"
INSANE_SKIP:${PN} += "already-stripped ldflags"
