# Inherited globally by conf/layer.conf. Adding the layer alone changes no build: every bbappend and
# recipe of the layer is gated on "edgeupdater" in DISTRO_FEATURES. This handler says so once per
# build, so that an integrator who forgot the feature is not left wondering why nothing changed.
#
# Set EDGEUPDATER_SKIP_SANITY_CHECK = "1" to silence it (for builds that carry the layer on purpose
# without using it).

addhandler edgeupdater_sanity_check
edgeupdater_sanity_check[eventmask] = "bb.event.SanityCheck"

python edgeupdater_sanity_check() {
    data = e.data
    if data.getVar('EDGEUPDATER_SKIP_SANITY_CHECK') == '1':
        return
    features = (data.getVar('DISTRO_FEATURES') or '').split()
    if 'edgeupdater' not in features:
        bb.warn("meta-edgeupdater is in BBLAYERS but 'edgeupdater' is not in DISTRO_FEATURES, so the "
                "layer's bbappends and recipes stay inactive. Add DISTRO_FEATURES:append = \" edgeupdater\" "
                "(see the layer README), or set EDGEUPDATER_SKIP_SANITY_CHECK = \"1\".")
        return
    if 'systemd' not in features:
        bb.warn("'edgeupdater' is in DISTRO_FEATURES but 'systemd' is not: the agent runs as a systemd "
                "service (Type=notify, watchdog, boot-complete.target) and its recipe will be skipped. "
                "Set INIT_MANAGER = \"systemd\".")
}
