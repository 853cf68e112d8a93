"""How a command's result is printed: JSON for scripts (--json), else for people."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel


def emit(args: argparse.Namespace, data: Any, human: Callable[[Any], str]) -> None:
    """Print `data` as JSON with --json, else as `human` renders it."""
    if args.json:
        if isinstance(data, BaseModel):
            data = data.model_dump(mode="json")
        elif isinstance(data, list):
            data = [d.model_dump(mode="json") if isinstance(d, BaseModel) else d for d in data]
        print(json.dumps(data, indent=2, default=str))
    else:
        print(human(data))


def note(args: argparse.Namespace, message: str) -> None:
    """A note beside the result, on stderr: `note: ...`, or with --json a JSON object, as
    errors and warnings are."""
    if getattr(args, "json", False):
        print(json.dumps({"note": message.removeprefix("note: ")}), file=sys.stderr)
    else:
        print(message, file=sys.stderr)
