"""What the command line accepts: exit statuses, the parser's error style, argument types.

Each type turns one command-line word into a value or refuses it with a sentence that says
what was expected; argparse prints that sentence as the one line of a usage error.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from client.cli.usage_hints import command_path, explained
from client.refund_ids import pasted_refund_id
from workflows.vocabulary import IDENTIFIER_PATTERN, REASON_CODES, says_something

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NEEDS_A_PERSON = 3
"""`reconcile --check`: the run left findings for a person (escalated, or reported);
`operator retry`: the new attempt did not pay (refused again), an operator decides again."""
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """Bad input on the command line."""


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes as one line plus a pointer to --help, not a usage dump."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """--json means the same before the command (`refundflow --json status ...`) as
        after it: the top level's own --json (dest `json_first`, since a command's default
        would overwrite a shared dest) is folded into `json` once the whole line is read."""
        self.words_given = list(sys.argv[1:] if args is None else args)
        parsed, rest = super().parse_known_args(args, namespace)
        self.command_given = getattr(parsed, "command", None)
        """The command the line named, for the error about what follows it."""
        if hasattr(parsed, "json_first"):
            parsed.json = bool(getattr(parsed, "json", False) or parsed.json_first)
            del parsed.json_first
        return parsed, rest

    def error(self, message: str) -> NoReturn:
        command = getattr(self, "command_given", None)
        # The command's own help when the line named one, down to the subcommand (unknown
        # options are reported by the top parser, whose --help does not list them).
        prog = self.prog
        if command and self.prog.count(" ") == 0:
            path = command_path(self, getattr(self, "words_given", []))
            prog = " ".join([self.prog, *(path if path[:1] == [command] else [command])])
        said = f"{explained(self, message, command)} (see `{prog} --help`)"
        if "--json" in sys.argv[1:]:  # parsing failed, so this is all we know of the wish
            self.exit(EXIT_USAGE, json.dumps({"error": said, "exit_status": EXIT_USAGE}) + "\n")
        self.exit(EXIT_USAGE, f"error: {said}\n")


class GivenOnce(argparse.Action):
    """An option that may be given once: `--as li --as bob` is refused, not acted on as bob
    (a trial: argparse's last-one-wins acted as someone the line also said it was not)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        before = getattr(namespace, self.dest, None)
        if before is not None and before != values:
            parser.error(f"{option_string} given twice ({before}, then {values}): give it once")
        setattr(namespace, self.dest, values)


def line(value: str) -> tuple[str, int]:
    """SKU:QTY, a line of the order to refund."""
    sku, sep, qty = value.rpartition(":")
    if not sep or not sku or not qty.isdigit() or int(qty) <= 0:
        raise argparse.ArgumentTypeError(
            f"expected SKU:QTY with QTY a positive whole number, got {value!r}"
        )
    return sku, int(qty)


ORDER_COMMANDS = {"refunds": "list", "findings": "anomalies"}


def refund_id(value: str, by_order: str = "refunds") -> str:
    """A refund id as refundflow makes them (rf_ and 24 lowercase hex digits), pasted with
    spaces around it or in upper case too. `by_order`: where an order id given instead is
    pointed: its `refunds` (`list --order`) or `findings` (`anomalies --order`)."""
    normal = pasted_refund_id(value)
    if normal is None:
        order = value.strip()
        hint = (  # a trial: `status ord_…`; never a command refused in its turn (`../x`)
            f"; an order's {by_order}: `refundflow {ORDER_COMMANDS[by_order]} --order {order}`"
            if not order.lower().startswith("rf_") and _is_identifier(order)
            else ""
        )
        if pasted_refund_id("rf_" + order) is not None:  # copied without its prefix (a trial)
            hint = f"; did you mean rf_{order.lower()}?"
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a refund id (they look like rf_ and 24 hex digits){hint}"
        )
    return normal


def statement(value: str) -> str:
    """A reason or a proof the audit keeps for good: the API's rule, said before asking.
    Line breaks as the console sends them: text pasted from Windows carries CRLF."""
    try:
        return says_something(value.replace("\r\n", "\n").replace("\r", "\n"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value!r}")
    return int(value)


def port(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 1 to 65535, got {value!r}")
    return int(value)


def assignment(value: str) -> tuple[str, str]:
    key, sep, raw = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {value!r}")
    return key, raw


def minor(value: str) -> int:
    """An amount in minor units, more than 0 (every --amount is: said here as the option's
    mistake, not later as the request's "amount must be greater than 0", a trial). Only
    digits: int() would also take "1_000", which nobody means as money. Spaces around it
    (a pasted " 5000", a trial) are dropped, as around an order id."""
    value = value.strip()
    if not re.fullmatch(r"-?[0-9]+", value):
        raise argparse.ArgumentTypeError(
            "amount must be a whole number of the currency's minor units (4200 is 42.00 USD,"
            f" or 4200 JPY, which has no decimals), got {value!r}"
        )
    if int(value) <= 0:
        raise argparse.ArgumentTypeError(f"amount must be more than 0, got {value!r}")
    return int(value)


def _identifier(value: str, refusal: str) -> str:
    """An id or a handle, checked here for a plain sentence, not a validation error later."""
    if not _is_identifier(value):
        raise argparse.ArgumentTypeError(refusal)
    return value


def _is_identifier(value: str) -> bool:  # what the contracts accept as an id or a handle
    return len(value) <= 64 and re.fullmatch(IDENTIFIER_PATTERN, value) is not None


def order_id(value: str) -> str:
    """Spaces around a pasted order id are dropped; its case is kept: the order system makes
    order ids, and its ids may differ only in case."""
    return _identifier(
        value.strip(), f"{value!r} is not an order id (letters, digits and . _ : -, no spaces)"
    )


def refund_key(value: str) -> str:
    """Your own business key for a request, as the API's Idempotency-Key takes it (a trial
    read "refund_key must be …", a name the command line does not use)."""
    return _identifier(
        value,
        f"{value!r} is not a refund key (at most 64 letters, digits and . _ : -, starting"
        " with a letter or digit, no spaces)",
    )


def seconds(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected a number of seconds, 0 or more, got {value!r}")
    return int(value)


def file_to_write(value: str) -> Path:
    """A file a command writes when it is done: checked now, not after minutes of work (a
    bench of many minutes lost its figures to a folder that did not exist). Checked where a
    symlink points; the name itself is returned (/dev/stdout must stay itself in a pipe)."""
    if not value.strip() or os.path.basename(value) in ("", ".", ".."):
        raise argparse.ArgumentTypeError(f"expected a file name, got {value!r}")
    try:
        path = Path(value).expanduser()
        target = path.resolve()
    except (RuntimeError, OSError) as err:  # a symlink loop, ~nosuchuser
        raise argparse.ArgumentTypeError(f"{value}: {err}") from None
    if target.is_dir():
        raise argparse.ArgumentTypeError(f"{value} is a folder: name a file in it")
    if target.exists() or path.exists():  # written in place: the file must take writes
        if not os.access(path, os.W_OK):
            raise argparse.ArgumentTypeError(f"{value} exists and cannot be written")
        return path
    folder = target.parent
    if not folder.is_dir():
        why = "is a file, not a folder" if folder.exists() else "does not exist"
        raise argparse.ArgumentTypeError(f"the folder {folder} {why}")
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"the folder {folder} cannot be written to")
    return path


def name(value: str) -> str:
    """A staff handle or customer id as refunds record it: no spaces, no e-mail addresses."""
    return _identifier(
        value.strip(),
        f"expected a handle or id (letters, digits and . _ : -, no spaces), got {value!r}",
    )


def customer_id(value: str) -> str:
    """A customer id the dev stack's `--as` can name (cust_42; not CUST_42, not bob)."""
    from api.dev_issuer import NotInDirectory, customer_id  # the dev stack's rule, said once

    try:
        return customer_id(value.strip())
    except NotInDirectory as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def reason_code(value: str) -> str:
    """One of the reason codes every policy knows, e.g. damaged; a near miss is named."""
    given = value.strip().lower()
    if given in REASON_CODES:
        return given
    close = difflib.get_close_matches(given, REASON_CODES, n=1)
    meant = f" (did you mean {close[0]!r}?)" if close else ""
    raise argparse.ArgumentTypeError(
        f"unknown reason code {value!r}{meant}; the codes are {', '.join(REASON_CODES)}"
    )


def role(value: str) -> str:
    """A staff role some deployed policy knows (the refund's own policy has the last word)."""
    from client.policy_source import load_policy
    from client.settings import Settings
    from workflows.policy import parse_policy

    folder = Settings.from_env().policy_dir
    known = sorted(
        {
            r
            for path in folder.glob("*.toml")
            for r in parse_policy(load_policy(folder, path.stem).document).authority
        }
    )
    if known and value not in known:
        close = difflib.get_close_matches(value, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise argparse.ArgumentTypeError(
            f"unknown role {value!r} (the policies know {', '.join(known)}){hint}"
        )
    return value


def priced_line(value: str) -> dict[str, Any]:
    """SKU:QTY:UNIT_PRICE:CATEGORY, a line of a sandbox order."""
    parts = value.split(":")
    if len(parts) != 4 or not all(parts) or not parts[1].isdigit() or not parts[2].isdigit():
        raise argparse.ArgumentTypeError(
            f"expected SKU:QTY:UNIT_PRICE:CATEGORY (price in minor units), got {value!r}"
        )
    return {
        "sku": parts[0],
        "quantity": int(parts[1]),
        "unit_price": int(parts[2]),
        "category": parts[3],
    }


def subscriber_name(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", value):
        raise argparse.ArgumentTypeError(
            f"subscriber names are lowercase letters, digits and dashes, got {value!r}"
        )
    return value


def when(value: str) -> datetime:
    """YYYY-MM-DD (midnight UTC) or an ISO 8601 date-time (without an offset: UTC)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date YYYY-MM-DD or an ISO date-time, got {value!r}"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
