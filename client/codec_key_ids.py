"""What a payload key's id may be (`id:base64key` entries, `refundflow codec-key --id`): kept
apart from the codec itself so the command line checks an id without loading Temporal's SDK
(the CLI's parsing must not: tests/unit/test_cli_entry.py)."""

from __future__ import annotations

import re

KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")  # \Z: "$" would let a final newline in
KEY_ID_RULE = "use letters, digits, `.`, `_` or `-` (at most 64)"
