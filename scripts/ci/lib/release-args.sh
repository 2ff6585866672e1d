# shellcheck shell=bash disable=SC2034
# Shared by the agent CI checks (sourced, reads the caller's arguments): --skip-publish reuses the
# tarballs already in --out DIR (default artifacts/release); sets $out, $publish and the release $version.
out=artifacts/release
publish=1
while [ $# -gt 0 ]; do
    case "$1" in
        --skip-publish) publish=0; shift ;;
        --out) out=$2; shift 2 ;;
        *) echo "error: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
version=$(sed -n 's|.*<Version>\(.*\)</Version>.*|\1|p' Directory.Build.props | head -n 1)
