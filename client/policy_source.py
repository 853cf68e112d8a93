"""Where the policy in force comes from: versioned TOML files under policies/."""

from __future__ import annotations

from pathlib import Path

from client.errors import RefundflowError
from workflows.models import PinnedPolicy
from workflows.policy import PolicyError, pin_policy


class PolicyUnavailable(RefundflowError):
    """A policy that is not on file, or cannot be read. `public`: the same without the
    server's paths, for callers outside it (the API)."""

    def __init__(self, message: str, public: str) -> None:
        super().__init__(message)
        self.public = public


def load_policy(policy_dir: Path, name: str) -> PinnedPolicy:
    """Read and pin `<policy_dir>/<name>.toml` (for example `standard-v1`)."""
    path = policy_dir / f"{name}.toml"
    try:
        document = path.read_text()
    except FileNotFoundError:
        available = ", ".join(sorted(p.stem for p in policy_dir.glob("*.toml"))) or "none"
        raise PolicyUnavailable(
            f"policy {name!r} not found in {policy_dir} (available: {available})",
            f"policy {name!r} not found (available: {available})",
        ) from None
    try:
        return pin_policy(document)
    except PolicyError as err:
        raise PolicyUnavailable(
            f"policy file {path}: {err}", f"policy {name!r} is on file but cannot be read"
        ) from None
