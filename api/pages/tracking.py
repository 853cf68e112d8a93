"""The customer's tracking page, opened from a signed, expiring link (api/pages/security.py):
the refund's lifecycle as a progress bar, the ETA and the next step, in the customer's
language (?lang=, else Accept-Language, else the refund's own), readable on a phone.

Every word about the refund comes from `customer_view` (workflows/wording.py): the same
status object and templates as the notifications and the support reply. This module only
adds the page's own headings (CHROME) and nothing internal is ever shown.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response

from api.customer_answers import as_it_stands
from api.deps import state
from api.pages.security import tracking_ok
from api.pages.signin import pages
from api.schemas import RefundPath
from client.errors import RefundflowError
from workflows.models import LOCALES, StatusView
from workflows.states import RefundState
from workflows.wording import customer_view, state_label

router = APIRouter(include_in_schema=False)
STEPS = (
    RefundState.PENDING_REVIEW,
    RefundState.APPROVED,
    RefundState.REFUNDING,
    RefundState.COMPLETED,
)
CHROME: dict[str, dict[str, str]] = {
    "en": {
        "title": "Your refund",
        "order": "Order",
        "amount": "Amount",
        "progress": "Progress",
        "next": "What happens next",
        "history": "History",
        "done": "done",
        "current": "current step",
        "to_come": "to come",
        "language": "Language",
        "invalid": "This link has expired or is not valid. Please use the link in your latest"
        " message about this refund.",
    },
    "zh-CN": {
        "title": "您的退款",
        "order": "订单",
        "amount": "金额",
        "progress": "进度",
        "next": "下一步",
        "history": "记录",
        "done": "已完成",
        "current": "当前步骤",
        "to_come": "待进行",
        "language": "语言",
        "invalid": "此链接已过期或无效。请使用您最近一条退款消息中的链接。",
    },
}


def pick_locale(lang: str, accept_language: str, refund_locale: str) -> str:
    """?lang= first, then the browser's languages in order, then the refund's own. Any
    tag of a language we speak means it (zh, zh-cn, zh-Hans-CN: Chinese); one we do not
    falls through (a trial: zh-Hans-CN broke a valid link, zh showed English)."""
    if lang in LOCALES:
        return lang
    for part in [lang, *accept_language.split(",")]:
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return refund_locale


def progress(status: StatusView, locale: str) -> list[dict[str, Any]]:
    """The steps of the lifecycle with where the refund is; a closed refund ends its bar
    at the step it was closed from, with the closing label."""
    if status.state is RefundState.CANCELLED:
        reached = [e.from_state for e in status.timeline if e.state is RefundState.CANCELLED]
        last = reached[-1] if reached and reached[-1] in STEPS else RefundState.PENDING_REVIEW
        steps = [*STEPS[: STEPS.index(last) + 1], RefundState.CANCELLED]
    else:
        steps = list(STEPS)
    at = steps.index(status.state)
    done_all = status.state in (RefundState.COMPLETED, RefundState.CANCELLED)
    return [
        {
            "label": state_label(step, locale),
            "mark": "done" if i < at or (i == at and done_all) else "current" if i == at else "",
        }
        for i, step in enumerate(steps)
    ]


@router.get("/track/{refund_id}")
async def track(
    request: Request,
    refund_id: RefundPath,
    e: Annotated[str, Query(max_length=16)] = "",
    s: Annotated[str, Query(max_length=64)] = "",
    # Long enough for any language tag; anything else is only not a language we speak.
    lang: Annotated[str, Query(max_length=1000)] = "",
    accept_language: Annotated[str, Header(max_length=4000)] = "",
) -> Response:
    view = pages(request)
    if not tracking_ok(view.config.secret, refund_id, e, s):
        locale = pick_locale(lang, accept_language, "en")
        return view.render(request, "track_invalid.html", 403, lang=locale, t=CHROME[locale])
    # Whoever holds a link may reload it, not hammer Temporal with it: a bucket per refund.
    state(request).limiter.take(f"track\x1f{refund_id}")
    try:
        status = await state(request).refunds.status(refund_id)
    except RefundflowError:
        locale = pick_locale(lang, accept_language, "en")
        return view.render(request, "track_invalid.html", 404, lang=locale, t=CHROME[locale])
    status = await as_it_stands(state(request), status)
    assert status.facts is not None  # every status the workflow answers carries its facts
    locale = pick_locale(lang, accept_language, status.facts.locale)
    localised = status.model_copy(
        update={"facts": status.facts.model_copy(update={"locale": locale})}
    )
    return view.render(
        request,
        "track.html",
        lang=locale,
        t=CHROME[locale],
        v=customer_view(localised, datetime.now(UTC)),
        steps=progress(status, locale),
        link_query={"e": e, "s": s},
        other={"en": "English", "zh-CN": "中文"},
    )
