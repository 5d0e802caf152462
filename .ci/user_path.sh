#!/usr/bin/env bash
# The user-path stage: the product as a user gets it, in a real Blender binary.
#
# Debian 13's Blender 4.3.2 runs on the system's Python 3.13, as every Blender from 5.1 on does
# with its own. In a Debian 13 root (.ci/debian13_root.sh, cached between runs):
#   1. the extension zip, built as `handcap addon-zip` builds it, installs with
#      `blender --command extension install-file`;
#   2. its Install Engine runs headless (the zip's wheel plus the package index) and ends with the
#      engine's self-test;
#   3. Estimate Hand on a two-hand photo, a real photo (when ../shared is there), a two-hand
#      clip and (Multi-View) three rendered views with their cameras, in Blender's default scene:
#      the rigs, their sides, a key on every frame, a camera per view;
#   4. the installed batch.py on the clip, and its .blend checked;
#   5. under Xvfb: Start Live with the panel's defaults on the clip (streams and records), and
#      screenshots of the panel and of the view through the capture's camera; a three-camera capture
#      imported, the panel in Several Views, and the view through each camera.
# Run from the repository root with the project's venv active (it builds the zip):
#   bash .ci/user_path.sh            # results and screenshots in out/user_path/
# Environment: HANDCAP_DEBIAN_ROOT (default /var/cache/handcap-ci/trixie), HANDCAP_USER_PATH_OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
root=${HANDCAP_DEBIAN_ROOT:-/var/cache/handcap-ci/trixie}
out=${HANDCAP_USER_PATH_OUT:-$repo/out/user_path}
inside=/tmp/handcap-user-path
stage="$root$inside"
started=$(date +%s)
step() { echo "user path [$(( $(date +%s) - started )) s]: $*"; }

step "the Debian 13 root with Blender"
bash .ci/debian13_root.sh "$root"
rm -rf "$out" "$stage"
mkdir -p "$out" "$stage/results"

step "building the extension zip as 'handcap addon-zip' does"
handcap addon-zip -o "$stage/zip" >/dev/null
python tests/user_path/make_media.py "$stage/media" --media-path "$inside/media"
cp tests/user_path/blender_*.py "$stage/"
cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$root/etc/ssl/certs/handcap-ci-ca.crt"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

mounted=()
mount_in_root() { mount "$@"; mounted=("${@: -1}" "${mounted[@]}"); }
cleanup() {
    for point in "${mounted[@]}"; do umount -l "$point" 2>/dev/null || true; done
    cp -r "$stage/results/." "$out/" 2>/dev/null || true
}
trap cleanup EXIT
mount_in_root -t proc proc "$root/proc"
mount_in_root --bind /dev "$root/dev"
mount_in_root -t sysfs sys "$root/sys"
mount_in_root -t tmpfs tmpfs "$root/dev/shm"

# A new user every run (no extension, no engine, no preferences); pip's cache is kept in the root.
in_root() {
    chroot "$root" /usr/bin/env -i HOME=/root USER=root LANG=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        PIP_CERT=/etc/ssl/certs/handcap-ci-ca.crt SSL_CERT_FILE=/etc/ssl/certs/handcap-ci-ca.crt \
        PIP_DEFAULT_TIMEOUT=180 DISPLAY=:99 "$@"
}
in_root rm -rf /root/.config/blender
zip=$(cd "$stage/zip" && ls handcap-*.zip)
media=$inside/media
results=$inside/results

step "blender --command extension install-file ($zip)"
in_root blender --command extension install-file -r user_default -e "$inside/zip/$zip"

step "Install Engine, headless"
in_root blender -b --online-mode --python-exit-code 1 -P "$inside/blender_install_engine.py" -- "$results/install.json"

step "Estimate Hand: photos, the two-hand clip and three rendered views, in the default scene"
pairs=("$media/two_hands.jpg" left,right "$media/two_hands.mp4" left,right
       "$media/rendered_views" "$(cat "$stage/media/rendered_views/side.txt")")
[ -f "$stage/media/wild_5.jpg" ] && pairs+=("$media/wild_5.jpg" left,right)
in_root blender -b --python-exit-code 1 -P "$inside/blender_estimate.py" -- "$results" "${pairs[@]}"

step "batch.py of the installed extension on the clip"
addon=$(in_root blender -b --python-expr "import bpy; print('ADDON=' + bpy.utils.user_resource('EXTENSIONS', path='user_default/handcap'))" \
        2>/dev/null | sed -n 's/^ADDON=//p')
in_root blender -b -P "$addon/batch.py" -- "$media/two_hands.mp4" -o "$results/batch"
frames=$(python -c "import cv2, sys; print(int(cv2.VideoCapture(sys.argv[1]).get(cv2.CAP_PROP_FRAME_COUNT)))" "$stage/media/two_hands.mp4")
in_root blender -b "$results/batch/two_hands.blend" --python-exit-code 1 -P "$inside/blender_check_blend.py" -- left,right "$frames"

step "the GUI under Xvfb: Start Live with the panel's defaults, screenshots"
in_root sh -c 'Xvfb :99 -screen 0 1600x1000x24 +extension GLX >/tmp/xvfb.log 2>&1 & echo $! > /tmp/xvfb.pid'
sleep 2
stop_xvfb() { in_root sh -c 'kill $(cat /tmp/xvfb.pid) 2>/dev/null || true'; }
trap 'stop_xvfb; cleanup' EXIT
in_root timeout 900 blender --python-exit-code 1 -P "$inside/blender_gui.py" -- live "$media/two_hands.mp4" "$results/gui"
for blend in two_hands_jpg two_hands_mp4 wild_5_jpg rendered_views; do
    [ -f "$stage/results/$blend.blend" ] || continue
    in_root timeout 300 blender "$results/$blend.blend" --python-exit-code 1 -P "$inside/blender_gui.py" -- shots "$results/gui_$blend"
done
in_root timeout 300 blender --python-exit-code 1 -P "$inside/blender_gui.py" -- views "$media/views" "$results/gui"
step "done: results and screenshots in $out"
