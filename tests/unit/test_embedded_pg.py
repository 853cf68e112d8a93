"""The embedded Postgres's data folder after an initdb cut short (Ctrl-C while `refundflow
dev` first starts): empty again, so the next start runs initdb, not a half cluster."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from worker.embedded_pg import EmbeddedPostgres
from worker.processes import StackError


def half_written(data_dir: Path) -> subprocess.CompletedProcess[str]:
    (data_dir / "PG_VERSION").write_text("17\n")  # what initdb writes first
    (data_dir / "base" / "1").mkdir(parents=True)
    return subprocess.CompletedProcess([], 1, "", "initdb: could not write")


@pytest.mark.parametrize("how", ["interrupted", "failed"])
def test_an_initdb_cut_short_leaves_no_half_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    data_dir = tmp_path / "postgres"
    data_dir.mkdir()
    pg = EmbeddedPostgres(data_dir, 5432, log_path=tmp_path / "pg.log")

    def initdb() -> subprocess.CompletedProcess[str]:
        done = half_written(data_dir)
        if how == "interrupted":
            raise KeyboardInterrupt  # as the dev stack's Ctrl-C handler raises it
        return done

    monkeypatch.setattr(pg, "_run_initdb", initdb)
    with pytest.raises(KeyboardInterrupt if how == "interrupted" else StackError):
        pg._initdb()
    assert list(data_dir.iterdir()) == []  # the next start runs initdb again
