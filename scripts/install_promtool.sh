#!/usr/bin/env bash
# Put `promtool` (Prometheus' rule checker) in .venv/bin for tests/unit/test_prometheus_rules.py,
# from Debian's `prometheus` package: downloaded with apt and unpacked here, not installed, so
# no Prometheus service is set up or started. Nothing to do when one is already on PATH.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="$ROOT/.venv/bin/promtool"
if command -v promtool >/dev/null 2>&1 || [ -x "$TARGET" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "warning: no promtool and no apt-get; install Prometheus' promtool (the rule tests fail without it)" >&2
    exit 0
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
if ! apt-get download -qq prometheus >/dev/null 2>&1; then
    # A fresh machine has no package lists yet; only root may fetch them.
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq >/dev/null 2>&1 || true
    fi
    apt-get download -qq prometheus >/dev/null 2>&1 || {
        echo "warning: could not download Debian's prometheus package for promtool" >&2
        exit 0
    }
fi
dpkg-deb -x prometheus_*.deb unpacked
install -m 755 unpacked/usr/bin/promtool "$TARGET"
echo "installed promtool into $TARGET" >&2
