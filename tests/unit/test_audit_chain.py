"""The audit's hash chain as pure code: what a row's hash covers, and what `audit --verify`
calls each kind of damage (tests/integration/test_audit_chain.py does it on Postgres)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from activities.audit_chain import (
    GENESIS,
    AuditContent,
    ChainedRow,
    canonical,
    check_chain,
    row_hash,
)

AT = datetime(2026, 11, 26, 6, 24, 39, 123456, tzinfo=UTC)


def content(seq: int, **changes: Any) -> AuditContent:
    row = AuditContent(
        refund_id="rf_1",
        seq=seq,
        event="approve" if seq > 1 else "requested",
        from_state="pending_review" if seq > 1 else None,
        to_state="approved" if seq > 1 else "pending_review",
        at=AT + timedelta(minutes=seq),
        actor="li",
        source="support",
        reason="approved 255.00 USD as lead",
        escalation_level=0,
        policy_version="standard@v3#abc",
    )
    return dataclasses.replace(row, **changes)


def chain(n: int) -> list[ChainedRow]:
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        row = ChainedRow(content(seq), prev, row_hash(content(seq), prev))
        rows.append(row)
        prev = row.row_hash
    return rows


def test_a_row_hash_covers_every_field_and_the_previous_hash() -> None:
    base = content(2)
    first = row_hash(base, GENESIS)
    assert first == row_hash(content(2), GENESIS)  # deterministic
    assert len(first) == 64 and set(first) <= set("0123456789abcdef")
    changes: dict[str, Any] = {
        "refund_id": "rf_2",
        "seq": 3,
        "event": "reject",
        "from_state": None,
        "to_state": "cancelled",
        "at": AT + timedelta(microseconds=1),
        "actor": "bob",
        "source": "web",
        "reason": "approved 255.00 USD as lead ",
        "escalation_level": 1,
        "policy_version": "standard@v2#abc",
        "issuer": "https://id.example/",
    }
    # Every field of the content is changed once: a field left out of the hash would pass.
    assert set(changes) == {field.name for field in dataclasses.fields(base)}
    for name, value in changes.items():
        assert row_hash(dataclasses.replace(base, **{name: value}), GENESIS) != first, name
    assert row_hash(base, "1" * 64) != first


def test_a_row_without_an_issuer_hashes_as_before_the_issuer_existed() -> None:
    """Migration 0009 added the issuer: every row chained before it still verifies."""
    row = content(2)
    fields = [
        "refundflow.audit.v1", "rf_1", "2", "approve", "pending_review", "approved",
        "2026-11-26T06:26:39.123456Z", "li", "support", "approved 255.00 USD as lead", "0",
        "standard@v3#abc", GENESIS,
    ]  # fmt: skip
    assert canonical(row, GENESIS) == b"".join(f"{len(f.encode())}:{f}".encode() for f in fields)
    vouched = dataclasses.replace(row, issuer="https://id.example/")
    assert b"19:https://id.example/64:" in canonical(vouched, GENESIS)


def test_the_same_instant_in_any_zone_hashes_alike_and_naive_means_utc() -> None:
    at = content(1).at
    tokyo = timezone(timedelta(hours=9))
    assert row_hash(content(1, at=at.astimezone(tokyo)), GENESIS) == row_hash(content(1), GENESIS)
    naive = at.replace(tzinfo=None)
    assert row_hash(content(1, at=naive), GENESIS) == row_hash(content(1), GENESIS)


def test_fields_cannot_trade_characters_across_their_boundary() -> None:
    # Length prefixes: "ab" + "c" and "a" + "bc" are different rows, and so are their bytes.
    one = canonical(content(1, actor="ab", source="c"), GENESIS)
    two = canonical(content(1, actor="a", source="bc"), GENESIS)
    assert one != two
    # A missing from_state is not the text "-" nor the empty text.
    assert canonical(content(1, from_state=None), GENESIS) != canonical(
        content(1, from_state="-"), GENESIS
    )
    assert canonical(content(1, from_state=None), GENESIS) != canonical(
        content(1, from_state=""), GENESIS
    )
    # Lengths are in bytes: non-ASCII text is encoded the one way.
    assert b"6:\xe9\x80\x80\xe6\xac\xbe" in canonical(content(1, reason="退款"), GENESIS)


def test_an_intact_chain_passes() -> None:
    assert check_chain("rf_1", chain(4)) is None
    assert check_chain("rf_1", chain(4), recorded_upto=4) is None
    assert check_chain("rf_1", []) is None


def test_a_changed_row_is_content_changed_at_its_seq() -> None:
    rows = chain(4)
    rows[1] = dataclasses.replace(rows[1], content=content(2, reason="approved 9,999 USD"))
    broken = check_chain("rf_1", rows)
    assert broken is not None
    assert (broken.refund_id, broken.seq, broken.problem) == ("rf_1", 2, "content changed")


def test_a_row_rewritten_with_its_own_hash_breaks_the_link_of_the_next() -> None:
    rows = chain(4)
    forged = content(2, reason="approved 9,999 USD")
    rows[1] = ChainedRow(forged, rows[1].prev_hash, row_hash(forged, rows[1].prev_hash))
    broken = check_chain("rf_1", rows)
    assert broken is not None and (broken.seq, broken.problem) == (3, "chain broken")
    assert "seq 2's hash" in broken.detail


def test_a_removed_row_is_row_missing_at_its_seq() -> None:
    rows = chain(4)
    del rows[2]
    broken = check_chain("rf_1", rows)
    assert broken is not None and (broken.seq, broken.problem) == (3, "row missing")
    first_gone = check_chain("rf_1", chain(3)[1:])
    assert first_gone is not None and (first_gone.seq, first_gone.problem) == (1, "row missing")


def test_a_removed_last_row_shows_against_the_projection() -> None:
    broken = check_chain("rf_1", chain(3), recorded_upto=4)
    assert broken is not None and (broken.seq, broken.problem) == (4, "row missing")
    assert "up to seq 4" in broken.detail


def test_a_first_row_not_chained_from_genesis_is_chain_broken() -> None:
    rows = chain(2)
    first = content(1)
    rows[0] = ChainedRow(first, "f" * 64, row_hash(first, "f" * 64))
    broken = check_chain("rf_1", rows)
    assert broken is not None and (broken.seq, broken.problem) == (1, "chain broken")
    assert "genesis" in broken.detail
