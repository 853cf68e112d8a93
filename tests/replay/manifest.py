"""Reading tests/replay/histories: the committed histories and their manifest."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

HISTORY_DIR = Path(__file__).parent / "histories"
MANIFEST = HISTORY_DIR / "manifest.json"


def history_files() -> list[str]:
    """Every committed history file (the manifest is not one)."""
    return sorted(p.name for p in HISTORY_DIR.glob("*.json") if p != MANIFEST)


def manifest_entries() -> dict[str, dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(MANIFEST.read_text())["histories"]
    return {entry["file"]: entry for entry in entries}


def events_of(name: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads((HISTORY_DIR / name).read_text())["events"]
    return events


def patch_markers(events: list[dict[str, Any]]) -> list[str]:
    """The patch ids `workflow.patched()` recorded in a history, in order."""
    found = []
    for event in events:
        marker = event.get("markerRecordedEventAttributes")
        if marker and marker.get("markerName") == "core_patch":
            payload = marker["details"]["patch-data"]["payloads"][0]["data"]
            found.append(json.loads(base64.b64decode(payload))["id"])
    return found
