#!/usr/bin/env bash
# Builds the realistic benchmark trees the SquashFS and delta benchmarks share, from real Debian
# packages:
#   A: debootstrap --variant=minbase bookworm (the point release, main only)
#   B: A + bookworm-updates/bookworm-security, apt-get upgrade, a few more packages, an edited config
#   C: B with one small config file edited
# Trees are cached in $EDGEUPDATER_BENCH_CACHE (default /var/cache/edgeupdater-bench); delete it to rebuild.
# Needs root (debootstrap, chroot) and the Debian mirror.
set -euo pipefail
cache=${EDGEUPDATER_BENCH_CACHE:-/var/cache/edgeupdater-bench}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
mkdir -p "$cache"
command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }

in_chroot() { # dir, command...
    local dir=$1; shift
    mount -t proc proc "$dir/proc"
    mount --bind /dev "$dir/dev"
    trap 'umount -l "$dir/dev" "$dir/proc" 2>/dev/null || true' RETURN
    chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"
}

if [ ! -f "$cache/A.done" ]; then
    rm -rf "$cache/A"
    debootstrap --variant=minbase bookworm "$cache/A" "$mirror"
    rm -rf "$cache/A/var/cache/apt/archives/"*.deb "$cache/A/var/lib/apt/lists/"*_Packages
    touch "$cache/A.done"
fi

if [ ! -f "$cache/B.done" ]; then
    rm -rf "$cache/B"
    cp -a "$cache/A" "$cache/B"
    cat > "$cache/B/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
SOURCES
    cp /etc/resolv.conf "$cache/B/etc/resolv.conf" 2>/dev/null || true
    in_chroot "$cache/B" apt-get update -qq
    in_chroot "$cache/B" apt-get -y -qq upgrade
    in_chroot "$cache/B" apt-get -y -qq install --no-install-recommends less nano curl ca-certificates
    in_chroot "$cache/B" apt-get clean
    # apt's package indexes are not part of a device image (image builds drop them); the Translation
    # files alone are 34 MB of text no old image has. Only the lock and partial/ stay.
    find "$cache/B/var/lib/apt/lists" -maxdepth 1 -type f ! -name lock -delete
    echo "edgeupdater-bench" > "$cache/B/etc/hostname"
    sed -i 's/^#\?\s*HISTSIZE=.*/HISTSIZE=2000/' "$cache/B/etc/skel/.bashrc"
    touch "$cache/B.done"
fi

# Trees cached by an older version of this script still hold apt's Translation indexes; their .done
# is touched so that images squashed from them are rebuilt.
for t in B C; do
    if [ -f "$cache/$t.done" ] && compgen -G "$cache/$t/var/lib/apt/lists/*_Translation-*" >/dev/null; then
        find "$cache/$t/var/lib/apt/lists" -maxdepth 1 -type f ! -name lock -delete
        touch "$cache/$t.done"
    fi
done

if [ ! -f "$cache/C.done" ]; then
    rm -rf "$cache/C"
    cp -a "$cache/B" "$cache/C"
    sed -i 's/^#\?\s*PRINT_LASTLOG.*/PRINT_LASTLOG yes/' "$cache/C/etc/login.defs"
    echo "# edited for the B to C benchmark" >> "$cache/C/etc/login.defs"
    touch "$cache/C.done"
fi
du -sh "$cache/A" "$cache/B" "$cache/C"
