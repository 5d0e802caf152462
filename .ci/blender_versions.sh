#!/usr/bin/env bash
# The add-on's own tests on the Blender LTS releases beside the project's bpy 5.0.1.
#
#   .ci/blender_versions.sh              # bpy 4.2 LTS and 4.5 LTS (latest patch of each)
#   .ci/blender_versions.sh 4.5          # one series; or a full version: 4.2.23
#   HANDCAP_CACHE=DIR .ci/blender_versions.sh [-- PYTEST ARGS...]
#
# For each series a venv is kept in ${HANDCAP_CACHE:-$HOME/.cache/handcap-ci}/bpy-SERIES and
# reused while it holds that bpy and the same requirements (otherwise it is made again). The venv
# has what the add-on tests import: bpy, numpy<2, pytest, OpenCV (tests/reference_lbs.py), and
# torch CPU (tests/test_blender_support.model_capture makes captures with core's torch hand
# layer: the independent ground truth the Blender rig must reproduce). The project itself is not
# installed there: the tests run from this checkout (cwd first on sys.path, PYTHONPATH for the
# subprocesses). Prints pytest's summary line per version; exits non-zero when any run fails.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${HANDCAP_CACHE:-$HOME/.cache/handcap-ci}
PYTHON=${HANDCAP_CI_PYTHON:-python3.11}
TIMEOUT=${HANDCAP_LTS_TIMEOUT:-1200}      # seconds per version's test run (a hang fails, exit 124)

SERIES=()
PYTEST_ARGS=()
while [ $# -gt 0 ]; do
    case $1 in
        --) shift; PYTEST_ARGS=("$@"); break ;;
        *) SERIES+=("$1"); shift ;;
    esac
done
[ ${#SERIES[@]} -gt 0 ] || SERIES=(4.2 4.5)

# The add-on's own tests: build, keys, import, export, retarget, batch, engine process, extension zip.
TESTS=(tests/test_blender_*.py tests/test_capture_format.py tests/test_retarget_mapping.py)

# What the tests need beside bpy (the project's own pins, pyproject.toml).
REQUIREMENTS=("numpy>=1.24,<2" "pytest>=8" "opencv-contrib-python>=4.9,<5" "torch==2.13.0" "setuptools>=68")
# Used when the package index cannot be asked (the latest patches checked 2026-12).
declare -A FALLBACK=([4.2]=4.2.23 [4.5]=4.5.15)

latest_patch() {  # latest_patch 4.2 -> 4.2.23 (from the package index), or the fallback
    local series=$1 found
    found=$("$PYTHON" -m pip index versions bpy 2>/dev/null | sed -n 's/^Available versions: //p' | tr ',' '\n' |
            tr -d ' ' | grep -E "^${series//./\\.}\.[0-9]+$" | sort -V | tail -1)
    echo "${found:-${FALLBACK[$series]:-}}"
}

venv_ready() {  # venv_ready DIR VERSION STAMP: the venv is there with that bpy and those requirements
    [ -x "$1/bin/python" ] && [ "$(cat "$1/handcap-ci-stamp" 2>/dev/null)" = "$3" ] &&
        "$1/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('bpy') != '$2')" 2>/dev/null
}

failed=0
report=()
for series in "${SERIES[@]}"; do
    if [[ $series =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then version=$series; series=${series%.*}
    else version=$(latest_patch "$series"); fi
    if [ -z "$version" ]; then
        echo "blender_versions: no bpy $series on the package index" >&2
        report+=("bpy $series: not found"); failed=1; continue
    fi
    venv=$CACHE/bpy-$series
    stamp="bpy==$version ${REQUIREMENTS[*]}"
    start=$(date +%s)
    setup=cached
    if ! venv_ready "$venv" "$version" "$stamp"; then
        setup=made
        echo "=== bpy $version: making $venv"
        rm -rf "$venv" && mkdir -p "$CACHE" && "$PYTHON" -m venv "$venv" &&
            "$venv/bin/python" -m pip install -q --disable-pip-version-check "bpy==$version" "${REQUIREMENTS[@]}" &&
            echo "$stamp" > "$venv/handcap-ci-stamp"
        if ! venv_ready "$venv" "$version" "$stamp"; then
            echo "blender_versions: could not make the venv for bpy $version" >&2
            report+=("bpy $version: venv failed"); failed=1; continue
        fi
    fi
    ready=$(date +%s)
    echo "=== bpy $version ($venv, $setup in $((ready - start)) s)"
    log=$(mktemp)
    PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH} timeout -k 10 "$TIMEOUT" "$venv/bin/python" -m pytest -q \
        -p no:cacheprovider "${TESTS[@]}" "${PYTEST_ARGS[@]}" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    end=$(date +%s)
    summary=$(grep -E '^=*.* (passed|failed|error|errors|skipped|no tests ran)( |,|$).* in [0-9.]+s' "$log" | tail -1 | sed 's/^=* *//; s/ *=*$//')
    rm -f "$log"
    [ "$rc" -eq 0 ] || failed=1
    report+=("bpy $version: ${summary:-pytest exit $rc} (venv $setup $((ready - start)) s, tests $((end - ready)) s, exit $rc)")
done

echo "=== blender_versions"
printf '%s\n' "${report[@]}"
exit $failed
