"""Limits that keep one caller from hurting the others: a request size limit (413) and a
rate limit per principal (429 with Retry-After), both answered as problems."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import Kind, ProblemError, problem_response


@dataclass
class _Bucket:
    tokens: float
    at: float


MAX_BUCKETS = 10_000
"""Past this many principals seen, the buckets that have refilled are forgotten."""


class RateLimiter:
    """A token bucket per principal, in memory (one API process; behind several, each
    process limits on its own: a caller gets at most N times the rate)."""

    def __init__(self, per_minute: int, burst: int, clock: object = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(max(burst, 1))
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> None:
        """Spend one token of `key`'s bucket, or refuse with how long to wait."""
        now = self._now()
        if len(self._buckets) >= MAX_BUCKETS:
            self._forget_full(now)
        bucket = self._buckets.get(key) or _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        self._buckets[key] = bucket
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return
        wait = math.ceil((1 - bucket.tokens) / self.rate) if self.rate > 0 else 60
        raise ProblemError(
            Kind.RATE_LIMITED,
            f"too many requests from this principal; try again in {wait} s",
            {"Retry-After": str(wait)},
        )

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled: a new one starts full all the same."""
        full = [
            key
            for key, b in self._buckets.items()
            if b.tokens + (now - b.at) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]

    def _now(self) -> float:
        clock = self._clock
        assert callable(clock)
        return float(clock())


class BodySizeLimit:
    """Refuse a request whose body is larger than `limit` bytes (413): by its
    Content-Length, or, sent without one, by reading it (at most `limit` bytes are kept)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.limit:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        messages = await self._buffered(receive)
        if messages is None:
            await self._refuse(scope, receive, send)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _buffered(self, receive: Receive) -> list[Message] | None:
        """The body's messages, or None once they add up to more than the limit."""
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.limit:
                return None
            if message["type"] != "http.request" or not message.get("more_body"):
                return messages

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"the request body is larger than {self.limit} bytes"
        response = problem_response(Kind.TOO_LARGE, detail, scope.get("path"))
        await response(scope, receive, send)
