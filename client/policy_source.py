"""Where the policy in force comes from: versioned TOML files under policies/."""

from __future__ import annotations

from pathlib import Path

from client.errors import RefundflowError
from workflows.models import PinnedPolicy
from workflows.policy import PolicyError, pin_policy


def load_policy(policy_dir: Path, name: str) -> PinnedPolicy:
    """Read and pin `<policy_dir>/<name>.toml` (for example `standard-v1`)."""
    path = policy_dir / f"{name}.toml"
    try:
        document = path.read_text()
    except FileNotFoundError:
        available = sorted(p.stem for p in policy_dir.glob("*.toml"))
        raise RefundflowError(
            f"policy {name!r} not found in {policy_dir}"
            f" (available: {', '.join(available) or 'none'})"
        ) from None
    try:
        return pin_policy(document)
    except PolicyError as err:
        raise RefundflowError(f"policy file {path}: {err}") from None
