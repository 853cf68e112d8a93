"""`refundflow policy show|diff|list`: the policy in force, and what changed between versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from client.policy_source import load_policy
from workflows.models import PinnedPolicy
from workflows.policy import parse_policy


def describe(pinned: PinnedPolicy) -> dict[str, Any]:
    """The policy with its pinned identity and every setting, defaults filled in."""
    policy = parse_policy(pinned.document)
    return {
        "name": pinned.name,
        "version": pinned.version,
        "label": pinned.label,
        "content_hash": pinned.content_hash,
        "description": policy.description,
        "settings": flatten(
            policy.model_dump(mode="json", exclude={"name", "version", "description", "uncovered"})
        ),
    }


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{"approval": {"auto_approve_limit": 5000}} -> {"approval.auto_approve_limit": 5000}.
    An empty table (no fees, no authority) has no settings, and an unset optional one (None:
    say, no second approver before v3) is not a setting either, so they add nothing."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        return {prefix: data} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def diff(old: PinnedPolicy, new: PinnedPolicy) -> dict[str, Any]:
    before = describe(old)["settings"]
    after = describe(new)["settings"]
    changes = []
    for key in sorted(set(before) | set(after)):
        if before.get(key, _ABSENT) != after.get(key, _ABSENT):
            changes.append(
                {
                    "setting": key,
                    "from": before.get(key),
                    "to": after.get(key),
                    "change": "added"
                    if key not in before
                    else "removed"
                    if key not in after
                    else "changed",
                }
            )
    return {
        "from": old.label,
        "to": new.label,
        "changes": changes,
        # What each side's amounts are in (None: before v4, any refund's currency).
        "from_currency": before.get("currency"),
        "to_currency": after.get("currency"),
    }


def available(policy_dir: Path) -> list[dict[str, Any]]:
    return [
        describe(load_policy(policy_dir, path.stem)) for path in sorted(policy_dir.glob("*.toml"))
    ]


def load_named(policy_dir: Path, name: str) -> PinnedPolicy:
    """Accept `standard-v2`, `standard@v2` or `standard@2`."""
    if "@" in name:
        base, _, version = name.partition("@")
        name = f"{base}-v{version.removeprefix('v')}"
    return load_policy(policy_dir, name)


_ABSENT = object()
