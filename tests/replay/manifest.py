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


def started_on(events: list[dict[str, Any]]) -> str | None:
    """The roll-up patch a refund's start input says it started on (taken without a marker)."""
    started = events[0].get("workflowExecutionStartedEventAttributes", {})
    payloads = started.get("input", {}).get("payloads", [])
    if not payloads:
        return None
    assert base64.b64decode(payloads[0]["metadata"]["encoding"]) == b"json/plain"
    found: str | None = json.loads(base64.b64decode(payloads[0]["data"])).get("started_on")
    return found


def patch_paths(events: list[dict[str, Any]]) -> list[str]:
    """The patches whose new path a history took: asked (markers) or from its start."""
    taken = set(patch_markers(events))
    if (rolled_up := started_on(events)) is not None:
        taken.add(rolled_up)
    return sorted(taken)
