# Sourced by scripts: installs the Debian packages EdgeUpdater's tests, demo and benchmarks use.
# One package a line so that changes merge cleanly.
EDGEUPDATER_APT_PACKAGES=(
    attr
    binutils-aarch64-linux-gnu
    busybox
    clang
    curl
    e2fsprogs
    grub-common
    iproute2
    jq
    kmod
    libc6-dev-arm64-cross
    libdeflate0
    libgcc-12-dev-arm64-cross
    libubootenv-tool
    liblz4-1
    liblzma5
    liblzo2-2
    libsodium23
    libssl3
    libzstd1
    mosquitto
    mosquitto-clients
    openssl
    postgresql
    procps
    python3
    qemu-user-static
    shellcheck
    squashfs-tools
    systemd
    u-boot-tools
    util-linux
    xdelta3
    zlib1g
    zstd
)

# Installs what is missing; does nothing (and needs no network) when everything is there.
edgeupdater_install_deps() {
    local missing=()
    local pkg
    for pkg in "${EDGEUPDATER_APT_PACKAGES[@]}" "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "Installing Debian packages: ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    if ! command -v dotnet >/dev/null 2>&1; then
        echo "error: the .NET 10 SDK (dotnet) is not on PATH; install it first (https://dot.net)." >&2
        return 1
    fi
    local sdk
    sdk=$(dotnet --version 2>/dev/null || true)
    case "$sdk" in
        10.*) ;;
        *) echo "error: .NET SDK 10.x is required, found '${sdk:-none}'." >&2; return 1 ;;
    esac
    # Kernel modules the mount tests use; built in on some kernels, so a failure here is not fatal.
    if [ "$(id -u)" -eq 0 ]; then
        modprobe -q loop 2>/dev/null || true
        modprobe -q squashfs 2>/dev/null || true
        modprobe -q overlay 2>/dev/null || true
    fi
}
