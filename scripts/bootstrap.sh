#!/usr/bin/env bash
# Install what dunline needs on a fresh Debian/Ubuntu machine: system packages (as root),
# the virtualenv with the Python packages, and the cached sandbox PBX image.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
APT_PACKAGES=(debootstrap debian-archive-keyring zstd baresip iproute2 ca-certificates python3-venv ffmpeg openssl
              chromium chromium-driver fonts-wqy-zenhei  # browser tests: Debian's Chromium (Selenium), CJK glyphs
              poppler-utils)  # the weekly report's PDF (its Chinese in fonts-wqy-zenhei) read back by pdftotext in tests

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "bootstrap: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
else
    echo "bootstrap: not root or no apt-get: skipping system packages (${APT_PACKAGES[*]})" >&2
fi

PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --upgrade pip >/dev/null
"$VENV/bin/pip" install -q -e '.[test]'

# The sandbox PBX image (Debian sid chroot with Asterisk 22), built once and cached
# machine-wide; skipped with a message where this host cannot run it.
"$VENV/bin/dunline" pbx image || echo "bootstrap: sandbox PBX image not available here (see above)" >&2
