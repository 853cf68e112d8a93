"""Database rows as plain JSON-ready dicts (timestamps as ISO 8601 text)."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
