#!/bin/sh
# Installs Debian's chromium when it is missing: the web console's browser tests
# (tests/e2e/test_console.py) and demo/screens.py drive it with Playwright through executable_path.
# Playwright's own browser download (`playwright install`) is never used.
# Runs as root in CI; a developer without root installs the package once with sudo.
# VELO_CHROMIUM names another chromium binary to use instead (then nothing is installed).
set -eu
if [ -n "${VELO_CHROMIUM:-}" ]; then
    [ -x "$VELO_CHROMIUM" ] && exit 0
    echo "ensure_chromium: VELO_CHROMIUM=$VELO_CHROMIUM is not an executable" >&2
    exit 1
fi
CHROMIUM=/usr/bin/chromium
[ -x "$CHROMIUM" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "ensure_chromium: $CHROMIUM is missing; install it with: sudo apt-get install -y chromium" >&2
    exit 1
fi
echo "ensure_chromium: installing Debian's chromium for the console's browser tests" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
[ -x "$CHROMIUM" ]
