"""The history manifest says what each committed history is, and agrees with the files and
with the patch register: every patch still in the code has histories for both its paths, and
every scenario kept in a truncated history is also recorded to the workflow's close."""

from __future__ import annotations

import ast
from pathlib import Path

import workflows.refund as package
import workflows.refund.patches as patches
from tests.replay.manifest import events_of, history_files, manifest_entries, patch_paths
from workflows.refund.patches import REGISTER, patch_ids

ENTRIES = manifest_entries()
# "complete": the history runs to the workflow's close, whichever way it closed.
CLOSED = {
    f"EVENT_TYPE_WORKFLOW_EXECUTION_{how}"
    for how in ("COMPLETED", "CANCELED", "FAILED", "TERMINATED", "TIMED_OUT", "CONTINUED_AS_NEW")
}


def test_every_history_is_in_the_manifest_and_every_entry_has_a_file() -> None:
    assert sorted(ENTRIES) == history_files()


def test_each_entry_states_the_patches_its_history_recorded() -> None:
    for name, entry in ENTRIES.items():
        events = events_of(name)
        assert patch_paths(events) == entry["new_path_of"], name
        started = events[0]["workflowExecutionStartedEventAttributes"]
        assert started["workflowType"]["name"] == entry["workflow"], name
        assert (events[-1]["eventType"] in CLOSED) == entry["complete"], name
        assert entry["scenario"] and entry["recorded_in"], name


def test_every_truncated_history_has_a_complete_recording_of_its_scenario() -> None:
    # A history fetched before its workflow closed never shows how the workflow ended: it is
    # kept (it still replays what it has), and its scenario is recorded again to the close.
    complete = {entry["scenario"] for entry in ENTRIES.values() if entry["complete"]}
    for name, entry in ENTRIES.items():
        if not entry["complete"]:
            assert entry["scenario"] in complete, f"{name}: no complete recording of it"


def test_only_refund_histories_claim_patch_paths() -> None:
    # The patch register is RefundWorkflow's; other workflows' histories take no patch path.
    for name, entry in ENTRIES.items():
        if entry["workflow"] != "RefundWorkflow":
            assert entry["new_path_of"] == entry["old_path_of"] == [], name


def test_every_patch_in_the_histories_is_registered() -> None:
    recorded = {patch for entry in ENTRIES.values() for patch in entry["new_path_of"]}
    claimed_old = {patch for entry in ENTRIES.values() for patch in entry["old_path_of"]}
    assert recorded | claimed_old <= patch_ids()


def test_every_live_patch_has_both_paths_covered_by_a_history() -> None:
    for patch in REGISTER:
        if patch.stage == "removed":
            continue
        new = [name for name, e in ENTRIES.items() if patch.id in e["new_path_of"]]
        old = [name for name, e in ENTRIES.items() if patch.id in e["old_path_of"]]
        assert new, f"no committed history takes the new path of {patch.id}"
        assert old, f"no committed history takes the old path of {patch.id}"
        assert not set(new) & set(old), f"{patch.id}: a history cannot take both paths"


def test_every_patch_id_used_by_the_workflow_is_registered() -> None:
    used = set()
    for module in Path(package.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"patched", "deprecate_patch"}
            ):
                arg = node.args[0]
                assert isinstance(arg, ast.Attribute), f"{module.name}: use a patches constant"
                used.add(arg.attr)
    assert {getattr(patches, name) for name in used} == patch_ids()
