SUMMARY = "EdgeUpdater agent configuration and pinned root keys"
DESCRIPTION = "Installs /etc/edgeupdater/agent.json and the trust files it names (pinned root public \
keys, key set chain). The files of this layer are an EXAMPLE: a product replaces agent.json and trust/ \
with a bbappend. While the example root key is installed, the build warns and the image carries \
/etc/edgeupdater/EXAMPLE-ROOT-KEY."
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

inherit features_check allarch
REQUIRED_DISTRO_FEATURES = "edgeupdater"

SRC_URI = "file://agent.json file://trust/"
S = "${WORKDIR}"

# Key id (docs/manifest-format.md: first 16 bytes of the SHA-256 of the raw key, hex) of the example
# root key in files/trust/root.pub, whose private half is not kept anywhere.
EDGEUPDATER_EXAMPLE_ROOT_KEY_ID = "984ba8d54add4af992bd4737fd8075c2"

do_configure[noexec] = "1"
do_compile[noexec] = "1"

do_install() {
    install -d ${D}${sysconfdir}/edgeupdater/trust
    install -m 0644 ${WORKDIR}/agent.json ${D}${sysconfdir}/edgeupdater/agent.json
    for file in ${WORKDIR}/trust/*; do
        install -m 0644 "$file" ${D}${sysconfdir}/edgeupdater/trust/
    done
}

# Warns loudly, and marks the image, when any installed root key is the example one.
python edgeupdater_check_example_key() {
    import base64
    import glob
    import hashlib
    import os

    trust = os.path.join(d.getVar('D'), d.getVar('sysconfdir').lstrip('/'), 'edgeupdater', 'trust')
    example = d.getVar('EDGEUPDATER_EXAMPLE_ROOT_KEY_ID')
    for path in sorted(glob.glob(os.path.join(trust, '*.pub'))):
        with open(path, encoding='ascii') as f:
            lines = [line.strip() for line in f if line.strip() and not line.startswith('-----')]
        # An Ed25519 SubjectPublicKeyInfo is 44 bytes: a 12-byte header, then the raw key.
        raw = base64.b64decode(''.join(lines))[-32:]
        if hashlib.sha256(raw).hexdigest()[:32] == example:
            bb.warn("%s pins the EXAMPLE root key of meta-edgeupdater (%s). Devices built with it trust "
                    "nothing but that example, and the image says so in /etc/edgeupdater/EXAMPLE-ROOT-KEY. "
                    "Replace agent.json and trust/ with your own (meta-edgeupdater/README.md)." % (d.getVar('PN'), example))
            with open(os.path.join(d.getVar('D'), d.getVar('sysconfdir').lstrip('/'), 'edgeupdater', 'EXAMPLE-ROOT-KEY'), 'w') as marker:
                marker.write("This image pins the example EdgeUpdater root key %s: replace it.\n" % example)
}
do_install[postfuncs] += "edgeupdater_check_example_key"

FILES:${PN} = "${sysconfdir}/edgeupdater"
CONFFILES:${PN} = "${sysconfdir}/edgeupdater/agent.json"
