"""Run pytest and exit with its real status, without interpreter finalisation.

- pytest's exit code 5 (no tests collected) is a failure here, never a pass.
- Temporal's Rust runtime threads can crash CPython's finalisation after every test has
  passed; os._exit after flushing keeps the true status.
"""

from __future__ import annotations

import os
import sys

import pytest


def main() -> None:
    status = int(pytest.main(sys.argv[1:]))
    if status == pytest.ExitCode.NO_TESTS_COLLECTED:
        print("error: no tests ran; treating that as a failure", file=sys.stderr)
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
