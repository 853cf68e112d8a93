"""Acting on a refund from the console: every action is asked once (the form), shown back
for confirmation (what will happen, to how much), and only then done, through the JSON
API's own action routes (api/routes_actions.py): the same authorization module, the same
audit source, the same errors. A refusal changes nothing and says why on the page.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from api import routes_actions
from api.authz import Action, decide
from api.deps import facts, state
from api.identity import Principal
from api.pages.console import (
    FIRST_APPROVAL_DONE,
    REJECT_REASONS,
    RETRY_REFUSED_AGAIN,
    possible_actions,
    refund_page,
)
from api.pages.security import CSRF_FIELD, csrf_ok, protect
from api.pages.signin import pages, signed_in, to_signin
from api.problems import ProblemError
from api.schemas import ApproveBody, PaidElsewhereBody, ReasonBody, RefundPath
from client import render
from client.errors import RefundflowError
from workflows.models import StatusView
from workflows.money import exponent, format_minor
from workflows.states import Awaiting
from workflows.vocabulary import FREE_TEXT_MAX_CHARS
from workflows.wording import first_approver, kept_receipt_entry

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form(max_length=600)]
LABELS = {
    Action.APPROVE: "Approve",
    Action.REJECT: "Reject",
    Action.CANCEL: "Withdraw (cancel before money moves)",
    Action.OPERATOR_RETRY: "Retry the payment",
    Action.OPERATOR_CANCEL: "Cancel (operator)",
    Action.OPERATOR_PAID_ELSEWHERE: "Mark paid elsewhere",
}


PLAIN_AMOUNT = re.compile(r"[0-9]+(\.[0-9]+)?")


class Refused(Exception):
    """Bad input on the form: said on the page, nothing sent."""


def minor_units(text: str, currency: str) -> int | None:
    """'180.50' in the refund's currency as minor units; empty: the whole amount."""
    if not text.strip():
        return None
    digits = exponent(currency)
    example = format_minor(180 * 10**digits, currency)
    # "79000 JPY" as the page shows amounts: the refund's own currency code may follow.
    text = text.strip().removesuffix(currency).removesuffix(currency.lower()).strip() or text
    if text.strip().startswith("-"):
        raise Refused(f"amount: {text!r} is below zero; give what to approve, such as {example}")
    # Digits and one point only: Decimal would also take "1e3" and other scripts' digits.
    if not PLAIN_AMOUNT.fullmatch(text.strip()):
        raise Refused(f"amount: {text!r} is not an amount such as {example}")
    try:
        value = Decimal(text.strip()) * (10**digits)
    except InvalidOperation:
        raise Refused(f"amount: {text!r} is not an amount such as {example}") from None
    if value != value.to_integral_value():
        places = "no decimals" if digits == 0 else f"{digits} decimals at most"
        raise Refused(f"amount: {text!r} has too many decimals: {currency} has {places}")
    if value <= 0:
        raise Refused(f"amount: {text!r} is nothing to approve; give more than 0 {currency}")
    return int(value)


def within_the_refund(minor: int | None, status: StatusView) -> None:
    """An approval for more than the refund pays is refused on the form, not first shown
    for confirmation (a trial confirmed 300.01 of 300.00, and 4200.00 meant as minor units,
    before the workflow refused it). Less is allowed: it decides all of it."""
    if minor is not None and minor > status.amount:
        asked = format_minor(minor, status.currency)
        most = format_minor(status.amount, status.currency)
        raise Refused(
            f"amount: {asked} is more than this refund's {most}; approve at most that"
            f" (amounts here are in {status.currency}, such as {most}, not in minor units)"
        )


def reason(action: Action, code: str, note: str) -> str:
    """The reason recorded in the audit (for a rejection, the code leads the note), refused
    here when too long, before the confirmation page shows it as what will be recorded."""
    said = _reason(action, code, note)
    if len(said) > FREE_TEXT_MAX_CHARS:
        room = FREE_TEXT_MAX_CHARS - (len(said) - len(note.strip()))
        raise Refused(f"note: {len(note.strip())} characters; at most {room} fit here")
    return said


def _reason(action: Action, code: str, note: str) -> str:
    if action is Action.REJECT:
        if code not in REJECT_REASONS:
            raise Refused("choose a reason for the rejection")
        if code == "other" and not note.strip():
            raise Refused("note: say why (the reason chosen is Other)")
        return f"{code}: {note.strip()}" if note.strip() else code
    if action in (Action.CANCEL, Action.OPERATOR_CANCEL, Action.OPERATOR_PAID_ELSEWHERE):
        if not note.strip():
            what = "the payment's reference" if action is Action.OPERATOR_PAID_ELSEWHERE else "why"
            raise Refused(f"note: say {what}")
    return note.strip()


async def perform(
    action: Action, refund_id: str, who: Principal, request: Request, amount: int | None, why: str
) -> StatusView:
    api = state(request)
    act = routes_actions
    if action is Action.APPROVE:
        checked = ApproveBody(amount=amount, evidence=why or None)  # the note: evidence
        return await act.approve(refund_id, checked, who, api)
    if action is Action.REJECT:
        return await act.reject(refund_id, ReasonBody(reason=why), who, api)
    if action is Action.CANCEL:
        cancelled = await act.cancel(refund_id, ReasonBody(reason=why), who, api)
        if not isinstance(cancelled, StatusView):  # the console signs in staff only
            raise TypeError("the console acted for a customer")
        return cancelled
    if action is Action.OPERATOR_RETRY:
        return await act.operator_retry(refund_id, who, api)
    if action is Action.OPERATOR_CANCEL:
        return await act.operator_cancel(refund_id, ReasonBody(reason=why), who, api)
    body = PaidElsewhereBody(proof=why)
    return await act.operator_paid_elsewhere(refund_id, body, who, api)


@router.post("/console/refunds/{refund_id}/act")
async def act(
    request: Request,
    refund_id: RefundPath,
    action: Annotated[str, Form(max_length=32)],
    csrf: Annotated[str, Form(alias=CSRF_FIELD, max_length=128)] = "",
    amount: Annotated[str, Form(max_length=24)] = "",
    code: Annotated[str, Form(max_length=32)] = "",
    note: Text = "",
    confirm: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    who = await signed_in(request)
    if who is None:
        return to_signin(request)

    async def again(error: str, status_code: int) -> Response:
        return await refund_page(request, who, refund_id, error=error, status_code=status_code)

    if not csrf_ok(pages(request).config.secret, request, csrf):
        expired = "The form expired or did not come from this page; nothing was done."
        return await again(expired, 403)
    try:
        chosen = Action(action)
        if chosen not in LABELS:
            raise ValueError(action)
    except ValueError:
        return await again(f"Unknown action {action!r}; nothing was done.", 400)
    api = state(request)
    status = await api.refunds.status(refund_id)
    if chosen not in possible_actions(status):  # changed since the page was read
        return await again(f"Refused: {no_longer(chosen, status)}. Nothing was changed.", 409)
    try:
        minor = minor_units(amount, status.currency) if chosen is Action.APPROVE else None
        within_the_refund(minor, status)
        # A browser sends a text box's line breaks as CRLF; the audit keeps plain \n.
        why = reason(chosen, code, note.replace("\r\n", "\n").replace("\r", "\n"))
        # Said before Confirm, as authority is (a trial met it after).
        if chosen is Action.APPROVE and status.evidence_required and not (status.evidence or why):
            raise Refused("evidence is required for this refund: say what you checked")
    except Refused as err:
        return await again(f"{err}; nothing was done.", 422)
    decision = decide(who, chosen, facts(api, status), amount=minor)
    if not decision.allowed:
        return await again(f"Refused: {decision.reason}. Nothing was changed.", 403)
    if confirm != "yes":
        form = {"amount": amount, "code": code, "note": note}
        return confirm_page(request, who, status, chosen, minor, why, form)
    return await carry_out(request, who, refund_id, chosen, minor, why)


def no_longer(chosen: Action, status: StatusView) -> str:
    """Why an action chosen on a page read earlier cannot be taken now (a trial confirmed a
    rejection of a refund that had completed meanwhile, refused only after Confirm)."""
    now = status.state.value.replace("_", " ")
    waiting = f", waiting for {status.awaiting.value}" if status.awaiting.value != "nothing" else ""
    return f"it is now {now}{waiting}: {LABELS[chosen]} is not possible any more"


def confirm_page(
    request: Request,
    who: Principal,
    status: StatusView,
    chosen: Action,
    minor: int | None,
    why: str,
    form: dict[str, str],
) -> Response:
    """What will happen, to how much, as whom: the form again, to be confirmed."""
    return pages(request).render(
        request,
        "confirm.html",
        who=who,
        s=status,
        action=chosen.value,
        label=LABELS[chosen],
        amount_text=format_minor(minor or status.amount, status.currency),
        # Approving less is final: the rest is not refunded, and a line's units count as
        # refunded (a reviewer must see what they give up).
        requested_text=format_minor(status.amount, status.currency)
        if minor is not None and minor < status.amount
        else None,
        reason=why,
        # Closing unpaid what the warehouse holds an item for (a trial: no word of it).
        item_held=kept_receipt_entry(status.timeline)
        if chosen in (Action.REJECT, Action.CANCEL, Action.OPERATOR_CANCEL)
        else None,
        amount=form["amount"],
        code=form["code"],
        note=form["note"],
    )


async def carry_out(
    request: Request, who: Principal, refund_id: str, chosen: Action, minor: int | None, why: str
) -> Response:
    """Do the confirmed action; a refusal is said on the refund's page, nothing changed."""
    error, status_code, done = "", 200, chosen.value
    try:
        after = await perform(chosen, refund_id, who, request, minor, why)
        if first_approver(after):  # four eyes: recorded, and nothing paid yet
            done = FIRST_APPROVAL_DONE
        elif chosen is Action.OPERATOR_RETRY and after.awaiting is Awaiting.OPERATOR:
            done = RETRY_REFUSED_AGAIN
    except ProblemError as err:
        error, status_code = f"{err.detail}. Nothing was changed.", err.kind.status
    except ValidationError as err:
        error, status_code = f"{render.validation_error(err)}; nothing was done.", 422
    except RefundflowError as err:
        said = str(err).removeprefix("refused: ")  # the page says "Refused:" itself
        error, status_code = f"Refused: {said}. Nothing was changed.", 409
    if error:
        return await refund_page(request, who, refund_id, error=error, status_code=status_code)
    target = f"/console/refunds/{refund_id}?done={done}"
    return protect(RedirectResponse(target, 303))
