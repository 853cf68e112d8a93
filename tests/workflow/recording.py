"""Workflow tests double as recorders of replay histories: with REFUNDFLOW_RECORD_TO set to
a folder, `keep_history` writes the history of the refund it is given there (review it,
then move it into tests/replay/histories and the manifest)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle


async def keep_history(handle: WorkflowHandle[Any, Any], name: str) -> None:
    folder = os.environ.get("REFUNDFLOW_RECORD_TO")
    if not folder:
        return
    history = await handle.fetch_history()
    (Path(folder) / f"{name}.json").write_text(history.to_json())
