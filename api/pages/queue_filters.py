"""The console queue's filters as typed in its form or its URL: the filters that apply, and
each one that cannot, named on the page. A filter dropped without a word reads as "nothing
matches" or "everything matches"; one that breaks the page (an amount of 1e999 reached
Postgres as a 503) is worse."""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from api.pages import queue
from workflows.models import CHANNELS, IDENTIFIER_PATTERN
from workflows.money import ISO_4217_CODES, check_currency, exponent
from workflows.states import Awaiting, RefundState

AMOUNT_LIMIT = Decimal(10) ** 10
"""Amounts are typed in the currency's units: more than any order holds, and what Postgres's
numeric compares without overflowing."""
ID_MAX_CHARS = 64
MOST_DECIMALS = max(exponent(code) for code in ISO_4217_CODES)
"""The most digits after the point of any currency's minor unit (BHD, KWD ...: 3)."""
_YES, _NO = {"true", "1", "on", "yes"}, {"", "false", "0", "off", "no"}


@dataclass
class Typed:
    """The queue's query, as text (a form sends every field, empty when unused)."""

    state: str = ""
    awaiting: str = "person"
    escalated: str = ""
    order: str = ""
    customer: str = ""
    channel: str = ""
    amount_min: str = ""
    amount_max: str = ""
    currency: str = ""
    cursor: str = ""


@dataclass
class Read:
    filters: queue.Filters
    cursor: str | None
    """The page marker, if it is one this console gave out (else the first page)."""
    ignored: list[str] = field(default_factory=list)
    """What was typed and not applied, in words for the page."""


LABELS = {
    "state": "State",
    "awaiting": "Waiting for",
    "escalated": "Escalated",
    "order": "Order",
    "customer": "Customer",
    "channel": "Channel",
    "amount_min": "Amount from",
    "amount_max": "Amount to",
    "currency": "Currency",
    "cursor": "The page marker",
}
"""The queue's query parameters, as the form labels them."""


def read(typed: Typed, repeated: dict[str, str] | None = None, unknown: Sequence[str] = ()) -> Read:
    """The filters; `repeated`: each parameter given more than once, with the value that
    applies (one filter takes one value: `state=approved&state=refunding` is not both);
    `unknown`: parameters that are no filter of the queue (`stat=`)."""
    said = [_unknown(name) for name in unknown]
    said += [
        f"{LABELS.get(name, name)} was given more than once: only {_shown(value)} applies"
        for name, value in (repeated or {}).items()
    ]
    said_of_currency: list[str] = []  # said after the amounts, as the form lays them out
    currency = _currency(typed.currency, said_of_currency)
    filters = queue.Filters(
        state=_state(typed.state, said),
        awaiting=_awaiting(typed.awaiting, said),
        escalated=_yes_or_no(typed.escalated, said),
        order=_identifier("Order", typed.order, said),
        customer=_identifier("Customer", typed.customer, said),
        channel=_channel(typed.channel, said),
        amount_min=_amount("Amount from", typed.amount_min, currency, said),
        amount_max=_amount("Amount to", typed.amount_max, currency, said),
        currency=currency,
    )
    said += said_of_currency
    low, high = filters.amount_min, filters.amount_max
    if low is not None and high is not None and low > high:  # neither, as the page says
        said.append(f"Amount from {low} is more than Amount to {high}: nothing could match")
        filters = dataclasses.replace(filters, amount_min=None, amount_max=None)
    if filters.awaiting == "person" and filters.state in queue.TERMINAL:
        # A closed refund waits for nobody: all of them are listed, and the form says so (a
        # trial read "a person" above rows waiting for nothing; "a person" is the default).
        filters = dataclasses.replace(filters, awaiting="any")
    cursor = typed.cursor.strip() or None
    if cursor is not None and queue.decode_cursor(cursor) is None:
        said.append("The page marker is not one this console gave out: this is the first page")
        cursor = None
    return Read(filters, cursor, said)


_MEANT = {"amount_to": "amount_max", "amount_from": "amount_min", "to": "amount_max"}
"""Parameters named as the form labels them, not as the query does (`amount_to`: its
closest spelling is amount_min, a trial)."""


def _unknown(name: str) -> str:
    near = [_MEANT[name]] if name in _MEANT else difflib.get_close_matches(name, list(LABELS), n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    return f"{_shown(name)} is not a filter of the queue{hint}"


def _shown(text: str) -> str:
    """What was typed, quoted, and cut short if long (a pasted page must not fill the page)."""
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _state(text: str, said: list[str]) -> str | None:
    text = text.strip()
    if text in {s.value for s in RefundState}:
        return text
    if text:
        said.append(f"State {_shown(text)} is not one of {', '.join(RefundState)}")
    return None


def _awaiting(text: str, said: list[str]) -> str:
    """Whom the queue shows refunds waiting for: a person by default."""
    text = text.strip()
    if text in ("person", "any", *(a.value for a in Awaiting)):
        return text
    if text:
        said.append(f"Waiting for {_shown(text)} is not a choice of the list")
    return "person"


def _yes_or_no(text: str, said: list[str]) -> bool:
    text = text.strip().lower()
    if text not in _YES | _NO:
        said.append(f"Escalated {_shown(text)} is neither yes nor no")
    return text in _YES


def _identifier(label: str, text: str, said: list[str]) -> str | None:
    text = text.strip()
    if len(text) <= ID_MAX_CHARS and re.fullmatch(IDENTIFIER_PATTERN, text):
        return text
    if text:
        said.append(f"{label} {_shown(text)} is not an id (up to 64 letters, digits, . _ : -)")
    return None


def _channel(text: str, said: list[str]) -> str | None:
    text = text.strip()
    if text in CHANNELS:
        return text
    if text:
        said.append(f"Channel {_shown(text)} is not one of {', '.join(CHANNELS)}")
    return None


def _amount(label: str, text: str, currency: str | None, said: list[str]) -> Decimal | None:
    """An amount in the currency's units, with no more decimals than its minor unit has
    (any currency's, 3, when none is chosen): 10.005 USD is no amount a refund holds."""
    text = text.strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not (value.is_finite() and 0 <= value < AMOUNT_LIMIT):
        said.append(f"{label} {_shown(text)} {_not_an_amount(value)}")
        return None
    digits = exponent(currency) if currency else MOST_DECIMALS
    if value != value.quantize(Decimal(1).scaleb(-digits)):
        unit = f"{currency} has {digits}" if currency else f"no currency has more than {digits}"
        said.append(f"{label} {_shown(text)} has more decimals than an amount can: {unit}")
        return None
    return value


def _not_an_amount(value: Decimal) -> str:
    """Why a typed amount is none (a review: "not an amount such as 150" of -5 and of 2e10)."""
    if not value.is_finite():
        return "is not a number (an amount in the currency's units, such as 150)"
    if value < 0:
        return "is below 0"
    return "is more than any refund"


def _currency(text: str, said: list[str]) -> str | None:
    text = text.strip()
    try:
        return check_currency(text.upper()) if text else None
    except ValueError:
        said.append(f"Currency {_shown(text)} is not a currency code such as USD")
        return None
