"""Customers' signed, expiring links to their refund's tracking page (/track/{refund_id}).

Whoever holds a link may see what the customer may see of that refund (customer_view), and
nothing else, until it expires. The API's pages check them (api/pages); the outbox
dispatcher puts one in every notification to the customer channel at send time, so the
pages' secret never enters workflow history or the stored outbox. Pure but for the clock:
HMAC-SHA256 over the pages' secret (REFUNDFLOW_PAGES_SECRET).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from urllib.parse import urlencode

TRACKING_LINK_DAYS = 90
"""How long a customer's tracking link works: a refund's whole life, with room to spare."""


def mac(secret: bytes, *parts: str) -> str:
    digest = hmac.new(secret, "\x1f".join(parts).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def tracking_query(secret: bytes, refund_id: str, now: float | None = None) -> str:
    """`e=EXPIRY&s=SIGNATURE` for /track/{refund_id}."""
    expires = int((now if now is not None else time.time()) + TRACKING_LINK_DAYS * 86400)
    return urlencode({"e": expires, "s": mac(secret, "track", refund_id, str(expires))})


def tracking_ok(
    secret: bytes, refund_id: str, expires: str, signature: str, now: float | None = None
) -> bool:
    if not expires.isdigit() or int(expires) < (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(mac(secret, "track", refund_id, expires), signature)


@dataclass(frozen=True)
class TrackingLinks:
    """Makes the links: where customers reach the API, and the pages' secret."""

    public_url: str
    secret: bytes

    def url(self, refund_id: str, now: float | None = None, lang: str | None = None) -> str:
        """`lang`: the page opens in the notification's language (a trial: a Chinese notice's
        link opened in English in an English browser); not signed, only a preference."""
        query = tracking_query(self.secret, refund_id, now)
        if lang:
            query += "&" + urlencode({"lang": lang})
        return f"{self.public_url.rstrip('/')}/track/{refund_id}?{query}"
