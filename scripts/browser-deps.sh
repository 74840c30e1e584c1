#!/usr/bin/env bash
# Installs Debian's headless Chromium and its driver for the browser test (tests/browser/).
# Debian packages only: a test tool that downloads its own browser cannot run on these machines.
# Skipped when both are present; needs root (CI runs as root) or passwordless sudo.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
echo "==> installing chromium and chromium-driver (Debian packages) for the browser test"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
