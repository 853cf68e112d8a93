"""The audit's hash chain: each row of a refund's trail carries the hash of the row before it
and its own, so a row changed, removed or slipped in by hand shows on `audit --verify`.

    row_hash = sha256(canonical(content) + prev_hash), prev_hash of seq 1 = GENESIS

The canonical encoding is length-prefixed UTF-8 (`<bytes>:<text>` per field, `-` for none)
so that no two contents encode alike, and simple enough to write again in SQL: migration
0008's refundflow.audit_row_hash chains the rows written before it, and any row inserted
later without hashes (an older worker during an upgrade); tests/integration/test_audit_chain
checks that both agree. `recorded_at` is not content: the database's clock at insert.

What the chain does not do: someone who may write the table (its owner, a superuser) can
rewrite a whole trail from some row on and re-chain it. It proves nothing changed *by hand*
in between; the app's role cannot UPDATE, DELETE or TRUNCATE the audit at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel

GENESIS = "0" * 64
"""What the first row of every refund's trail chains from."""
ENCODING = "refundflow.audit.v1"
"""First field of every encoding: a new encoding gets a new name, never a silent change."""
AUDIT_LOCK = 0x5246_4155  # "RFAU": first key of a refund's two-key advisory lock
"""Appends to one refund's trail take this lock (second key: hashtext of the refund id), so
a row is always chained to the row committed before it, never to one still in flight. The
SQL that chains rows inserted without hashes (migration 0008) takes the same lock."""


@dataclass(frozen=True)
class AuditContent:
    """What a row says, in the audit table's column order; what its hash covers."""

    refund_id: str
    seq: int
    event: str
    from_state: str | None
    to_state: str
    at: datetime
    actor: str
    source: str
    reason: str
    escalation_level: int
    policy_version: str
    issuer: str | None = None
    """The identity provider behind the actor (API actions); encoded only when present, so
    rows without one hash as they did before the column existed (migration 0009)."""


@dataclass(frozen=True)
class ChainedRow:
    content: AuditContent
    prev_hash: str
    row_hash: str


def utc(moment: datetime) -> datetime:
    """The instant in UTC; a naive time is taken as UTC, as asyncpg stores it."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _timestamp(moment: datetime) -> str:
    # Spelled out rather than strftime (%Y is not zero-padded everywhere); SQL: to_char(...)
    m = utc(moment)
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
        f".{m.microsecond:06d}Z"
    )


def _field(value: str | None) -> bytes:
    if value is None:
        return b"-"
    raw = value.encode("utf-8")
    return str(len(raw)).encode() + b":" + raw


def canonical(content: AuditContent, prev_hash: str) -> bytes:
    """The bytes a row's hash is taken over: its content, then the previous row's hash."""
    c = content
    fields = [
        ENCODING,
        c.refund_id,
        str(c.seq),
        c.event,
        c.from_state,
        c.to_state,
        _timestamp(c.at),
        c.actor,
        c.source,
        c.reason,
        str(c.escalation_level),
        c.policy_version,
        *([c.issuer] if c.issuer is not None else []),
        prev_hash,
    ]
    return b"".join(_field(f) for f in fields)


def row_hash(content: AuditContent, prev_hash: str) -> str:
    return hashlib.sha256(canonical(content, prev_hash)).hexdigest()


_CHAIN_AROUND_SQL = """
(SELECT seq, row_hash FROM refundflow.audit WHERE refund_id = $1 AND seq < $2
 ORDER BY seq DESC LIMIT 1)
UNION ALL
SELECT seq, row_hash FROM refundflow.audit WHERE refund_id = $1 AND seq = ANY($3::int[])
"""
"""In one round trip: the row a batch chains from (the last before its first entry) and
the batch's entries already stored (a retry)."""


async def link(conn: asyncpg.Connection, rows: Sequence[AuditContent]) -> list[ChainedRow]:
    """The rows of one refund's batch not stored yet, each chained to the row before it.

    In the caller's transaction, under the refund's lock. A row already stored (a retried
    batch) is skipped and the next one chains to the stored row's hash, so a retry computes
    exactly the hashes the first try stored. The caller checks that skipped rows are the
    same entries (pg_store's AuditConflict)."""
    if not rows:
        return []
    ordered = sorted(rows, key=lambda r: r.seq)
    refund_id = ordered[0].refund_id
    # The lock first, in a statement of its own: a statement reads as of its start, so
    # reads made in the statement that waited for the lock could miss the row it waited on.
    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", AUDIT_LOCK, refund_id)
    first_seq = ordered[0].seq
    found = await conn.fetch(_CHAIN_AROUND_SQL, refund_id, first_seq, [r.seq for r in ordered])
    stored = {r["seq"]: r["row_hash"] for r in found if r["seq"] >= first_seq}
    before = next((r["row_hash"] for r in found if r["seq"] < first_seq), None)
    prev = before or GENESIS
    new: list[ChainedRow] = []
    for content in ordered:
        if content.seq in stored:
            prev = stored[content.seq]
            continue
        chained = ChainedRow(content, prev, row_hash(content, prev))
        new.append(chained)
        prev = chained.row_hash
    return new


# --- verification ---------------------------------------------------------------------

Problem = Literal["content changed", "row missing", "chain broken"]


class ChainBreak(BaseModel):
    """The first thing wrong with one refund's trail."""

    refund_id: str
    seq: int
    """The first seq at which the trail is not what was written."""
    problem: Problem
    detail: str


class ChainReport(BaseModel):
    """`refundflow audit --verify`: every chain (or one refund's) recomputed."""

    verified: bool
    refunds: int
    entries: int
    broken: list[ChainBreak]


def check_chain(
    refund_id: str, rows: Iterable[ChainedRow], recorded_upto: int | None = None
) -> ChainBreak | None:
    """The first break in one refund's trail (rows in seq order), or None if it is intact.

    `recorded_upto` is the last seq the status projection says was written (in the same
    transaction as the rows): a trail that stops short of it lost its last rows."""
    expected, prev = 1, GENESIS

    def broken(seq: int, problem: Problem, detail: str) -> ChainBreak:
        return ChainBreak(refund_id=refund_id, seq=seq, problem=problem, detail=detail)

    for row in rows:
        seq = row.content.seq
        if seq != expected:
            return broken(expected, "row missing", f"the next entry stored is seq {seq}")
        if row_hash(row.content, row.prev_hash) != row.row_hash:
            return broken(seq, "content changed", "the entry no longer matches its hash")
        if row.prev_hash != prev:
            what = f"seq {seq - 1}'s hash" if seq > 1 else "the genesis value"
            return broken(seq, "chain broken", f"its link does not match {what}")
        prev, expected = row.row_hash, expected + 1
    if recorded_upto is not None and recorded_upto >= expected:
        return broken(
            expected,
            "row missing",
            f"the trail ends at seq {expected - 1}; the status projection records"
            f" entries up to seq {recorded_upto}",
        )
    return None


_ROWS = """
    SELECT refund_id, seq, event, from_state, to_state, at, actor, source, reason,
           escalation_level, policy_version, issuer, prev_hash, row_hash
    FROM refundflow.audit WHERE ($1::text IS NULL OR refund_id = $1)
    ORDER BY refund_id, seq
"""


def _chained(record: Any) -> ChainedRow:
    content = AuditContent(*(record[k] for k in AuditContent.__dataclass_fields__))
    return ChainedRow(content, record["prev_hash"], record["row_hash"])


async def _trails(
    conn: asyncpg.Connection, refund_id: str | None
) -> AsyncIterator[tuple[str, list[ChainedRow]]]:
    """Each refund's rows in seq order, one refund at a time (a cursor: the table can be
    far bigger than memory; one trail is not)."""
    current: str | None = None
    trail: list[ChainedRow] = []
    async for record in conn.cursor(_ROWS, refund_id, prefetch=2000):
        if record["refund_id"] != current:
            if current is not None:
                yield current, trail
            current, trail = record["refund_id"], []
        trail.append(_chained(record))
    if current is not None:
        yield current, trail


async def verify_chains(pool: asyncpg.Pool, refund_id: str | None = None) -> ChainReport:
    """Recompute every refund's chain (or `refund_id`'s) from one snapshot of the database."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        recorded = {
            r["refund_id"]: r["last_seq"]
            for r in await conn.fetch(
                "SELECT refund_id, last_seq FROM refundflow.refund_status"
                " WHERE ($1::text IS NULL OR refund_id = $1)",
                refund_id,
            )
        }
        broken: list[ChainBreak] = []
        refunds = entries = 0
        async for trail_id, trail in _trails(conn, refund_id):
            refunds, entries = refunds + 1, entries + len(trail)
            found = check_chain(trail_id, trail, recorded.pop(trail_id, None))
            if found:
                broken.append(found)
    # Refunds the projection knows of whose trail has no rows left at all.
    for lost_id, upto in sorted(recorded.items()):
        if upto == 0:
            continue  # an opening status (answered before its first step): nothing recorded yet
        refunds += 1
        detail = f"no rows left; the status projection records entries up to seq {upto}"
        broken.append(ChainBreak(refund_id=lost_id, seq=1, problem="row missing", detail=detail))
    return ChainReport(verified=not broken, refunds=refunds, entries=entries, broken=broken)
