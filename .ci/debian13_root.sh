#!/usr/bin/env bash
# Makes (once) a Debian 13 root that holds Debian's own Blender 4.3.2 on the system Python 3.13,
# Xvfb and the tools to screenshot it: the real Blender binary a user runs, for the user-path
# stage of CI (.ci/user_path.sh). Cached: a finished debootstrap (stamp file) is reused, and only
# packages missing from the list below are installed into it.
#
# usage: .ci/debian13_root.sh ROOT
set -euo pipefail
root=${1:?usage: debian13_root.sh ROOT}
stamp="$root/.handcap-debootstrap-done"
# python3-numpy: Debian's blender does not depend on it, but the add-on (like every Blender build
# from blender.org, which bundles it) needs numpy in Blender's Python.
packages="blender python3-numpy xvfb xauth python3-venv libgl1-mesa-dri libglx-mesa0 libegl1 libegl-mesa0
          x11-apps imagemagick xdotool ca-certificates"

if [ ! -f "$stamp" ]; then
    # The Debian mirror this machine's apt already uses (deb822 or one-line sources).
    mirror=$(grep -hoE '^URIs: *\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 | awk '{print $2}')
    [ -n "$mirror" ] || mirror=$(grep -hoE '^deb +\S+' /etc/apt/sources.list 2>/dev/null | head -n1 | awk '{print $2}')
    [ -n "$mirror" ] || { echo "debian13 root: no Debian mirror in this machine's apt sources" >&2; exit 1; }
    command -v debootstrap >/dev/null || { apt-get update -qq; apt-get install -y -qq debootstrap >/dev/null; }
    mkdir -p "$(dirname "$root")"
    rm -rf "$root"
    echo "debian13 root: debootstrap trixie from $mirror (a few minutes)"
    debootstrap --variant=minbase trixie "$root.partial" "$mirror" >"$root.debootstrap.log" 2>&1 \
        || { tail -n 20 "$root.debootstrap.log"; exit 1; }
    mv "$root.partial" "$root"
    touch "$stamp"
fi

missing=$(for p in $packages; do chroot "$root" dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null \
          | grep -q "install ok installed" || echo "$p"; done)
if [ -n "$missing" ]; then
    echo "debian13 root: apt-get install" $missing
    cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
    mount -t proc proc "$root/proc"
    trap 'umount "$root/proc" 2>/dev/null || true' EXIT
    chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing \
        >"$root.apt.log" 2>&1 || { chroot "$root" apt-get update -qq >>"$root.apt.log" 2>&1 && \
        chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing \
        >>"$root.apt.log" 2>&1; } || { tail -n 20 "$root.apt.log"; exit 1; }
    chroot "$root" apt-get clean
fi
echo "debian13 root: $(chroot "$root" blender --version 2>/dev/null | head -n1), $(chroot "$root" python3 --version) at $root"
