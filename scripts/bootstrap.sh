#!/usr/bin/env bash
# Create .venv (Python 3.11+) and install refundflow with its test tools, once per change
# of pyproject.toml or requirements.lock. Sourced by scripts/dev and scripts/test.
# Every package comes from requirements.lock, checked against its hashes (scripts/lock
# regenerates it); refundflow itself is then installed without resolving anything more.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

pick_python() {
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
                2>/dev/null; then  # a pyenv shim without that version only complains
            echo "$candidate"
            return
        fi
    done
    echo "error: Python 3.11 or newer is required" >&2
    exit 1
}

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating virtualenv in $VENV" >&2
    "$(pick_python)" -m venv "$VENV"
fi
STAMP="$VENV/.installed-$(cat "$ROOT/pyproject.toml" "$ROOT/requirements.lock" | sha256sum |
    cut -c1-16)"
if [ ! -f "$STAMP" ]; then
    echo "installing refundflow and its dependencies into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --require-hashes -r "$ROOT/requirements.lock"
    # The build backend (setuptools) is in the lock: no build isolation, so nothing unhashed.
    # PYTHONWARNINGS: setuptools' "Editable installation" banner is for its own users, not ours.
    PYTHONWARNINGS=ignore "$VENV/bin/python" -m pip install --quiet --no-deps \
        --no-build-isolation -e "$ROOT"
    rm -f "$VENV"/.installed-*
    touch "$STAMP"
fi
