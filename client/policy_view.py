"""`refundflow policy show|diff|list`: the policy in force, and what changed between versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from client.policy_source import load_policy
from workflows.models import PinnedPolicy
from workflows.money import format_minor
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


# --- as text (`policy show|list|diff` without --json) ---------------------------------


def as_text(data: dict[str, Any]) -> str:
    """`policy show`: every setting, money in the currency it is written in."""
    settings = data["settings"]
    currency = settings.get("currency")
    lines = [f"policy {data['label']}", f"  {data['description']}"]
    width = max((len(k) for k in settings), default=0)
    lines += [f"  {k:<{width}}  {_setting(k, v, currency)}" for k, v in settings.items()]
    lines.append(f"  ({_currency_rule(currency)})")
    return "\n".join(lines)


def _currency_rule(currency: str | None) -> str:
    """How a policy's amounts apply to a refund's currency: the rule `show` and `diff` state."""
    if currency is None:  # before v4 the amounts were applied as they stand to any currency
        return "amounts in the refund's currency; shown with 2 decimals, as for USD or EUR"
    return (
        f"amounts in {currency}, or in the currency [currencies] names; a refund in"
        " another currency waits for the most senior role, twice where four eyes apply"
    )


_MONEY_SETTINGS = ("_limit", "_above", "authority.", "auto_approve_per_")


def _setting(key: str, value: Any, currency: str | None = None) -> str:
    """A policy setting as a person reads it: money formatted in the currency it is
    written in (v4 on; two decimals before), basis points as percent."""
    if isinstance(value, int) and not isinstance(value, bool):
        if any(mark in key for mark in _MONEY_SETTINGS):
            if key.startswith("currencies."):
                currency = key.split(".")[1]
            if currency is not None:
                return f"{format_minor(value, currency)} ({value} minor units)"
            whole, cents = divmod(value, 100)  # integers: money is never a float
            return f"{whole}.{cents:02d} ({value} minor units)"
        if "_bps" in key:
            return f"{value / 100:.2f} % ({value} bps)"
    return str(value)


def list_as_text(rows: list[dict[str, Any]]) -> str:
    return "\n".join(f"{r['label']:<32} {r['description']}" for r in rows) or "no policies"


def diff_as_text(data: dict[str, Any]) -> str:
    head = f"{data['from']} -> {data['to']}"
    if not data["changes"]:
        return head + "\n  no differences"
    width = max(len(c["setting"]) for c in data["changes"])
    was, now = data.get("from_currency"), data.get("to_currency")
    lines = [head]
    for c in data["changes"]:
        # Each value as `policy show` reads it: money formatted, basis points as percent.
        old = "-" if c["change"] == "added" else _setting(c["setting"], c["from"], was)
        new = "-" if c["change"] == "removed" else _setting(c["setting"], c["to"], now)
        lines.append(f"  {c['change']:<8} {c['setting']:<{width}}  {old} -> {new}")
    if was != now:  # the rule for currencies a policy does not name changed with them
        lines.append(f"  changed  how amounts apply to a refund's currency: {_currency_rule(was)}")
        lines.append(f"           -> {_currency_rule(now)}")
    return "\n".join(lines)
