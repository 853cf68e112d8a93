#!/usr/bin/env bash
# Chromium for the browser tests (tests/integration/test_console_browser.py drives it with
# Playwright): Debian's package, since Playwright's own browser download cannot be reached.
# Nothing to do when `chromium` is on PATH. Without it the browser tests fail, never skip.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "warning: no chromium on PATH; install it (Debian: apt-get install chromium) or the browser tests fail" >&2
    exit 0
fi
echo "installing chromium (Debian's package) for the browser tests" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq chromium >/dev/null 2>&1; then
    # A fresh machine has no package lists yet.
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install -y -qq chromium >/dev/null 2>&1 || {
        echo "warning: could not install chromium; the browser tests will fail" >&2
        exit 0
    }
fi
echo "installed $(command -v chromium)" >&2
