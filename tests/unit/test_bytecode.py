"""The worker's private bytecode cache: the sandbox's per-refund imports find a .pyc even
when PYTHONDONTWRITEBYTECODE is set, and nothing is left behind or shared."""

from __future__ import annotations

import importlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from worker.bytecode import private_bytecode_cache


def test_modules_imported_in_the_block_are_compiled_once_into_a_private_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # as PYTHONDONTWRITEBYTECODE=1
    source = tmp_path / "rf_bytecode_probe.py"
    source.write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    prefix_before = sys.pycache_prefix
    with private_bytecode_cache() as folder:
        assert folder is not None
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
        module = importlib.import_module("rf_bytecode_probe")
        assert module.VALUE == 42
        written = list(Path(folder).rglob("rf_bytecode_probe*.pyc"))
        assert len(written) == 1, "compiled once, kept for the next import"
    assert not Path(folder).exists()
    assert sys.dont_write_bytecode is True and sys.pycache_prefix == prefix_before
    assert not list(tmp_path.rglob("*.pyc")), "nothing written beside the source"
    sys.modules.pop("rf_bytecode_probe", None)


def test_folders_of_workers_that_are_gone_are_removed_and_live_ones_kept(
    tmp_path: Path,
) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    abandoned = tmp_path / f"refundflow-bytecode-{gone.stdout.strip()}-x1"
    alive = tmp_path / f"refundflow-bytecode-{os.getpid()}-x2"
    unrelated = tmp_path / "refundflow-bytecode-notapid"
    for planted in (abandoned, alive, unrelated):
        (planted / "pkg").mkdir(parents=True)
    with private_bytecode_cache(str(tmp_path)) as cache:
        assert cache is not None and Path(cache).parent == tmp_path
        assert not abandoned.exists(), "a killed worker's folder goes"
        assert alive.exists() and unrelated.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, unrelated.name])
