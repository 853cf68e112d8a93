"""The tamper-evident audit on real Postgres: every row chained to the one before it, a
retried write chained alike, rows from before the chain chained by its migration, TRUNCATE
refused, and `refundflow audit --verify` catching rows changed by hand by the owner."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from activities.audit_chain import GENESIS, AuditContent, row_hash, verify_chains
from activities.migrate import apply_migrations
from activities.pg_store import MIGRATIONS, SCHEMA, PostgresRefundStore, create_pool
from client.refund_client import RefundClient
from tests.conftest import Sandbox, unique_key
from tests.integration.helpers import eventually, fresh_database, run_cli, wait_for_state
from tests.integration.test_audit_store import batch
from tests.integration.test_refund_flow import make_request
from worker.devstack import DevStack
from workflows.models import RecordTransitionsInput
from workflows.states import RefundState

pytestmark = pytest.mark.stack
TOKYO = timezone(timedelta(hours=9))


def trail(refund_id: str, states: list[RefundState], **fields: Any) -> RecordTransitionsInput:
    """Entries 1..n of a refund, one per state, with content worth hashing."""
    made = batch(refund_id, list(range(1, len(states) + 1)), states[-1])
    entries = [
        e.model_copy(
            update={
                "state": state,
                "from_state": states[i - 1] if i else None,
                "at": datetime(2026, 11, 26, 6, 24, 39, 123456, tzinfo=TOKYO)
                + timedelta(seconds=i),
                "reason": f"退款 {i}: 'quoted' \"twice\" ✓",
                **fields,
            }
        )
        for i, (e, state) in enumerate(zip(made.entries, states, strict=True))
    ]
    return made.model_copy(update={"entries": entries})


def new_refund_id() -> str:
    return f"rf_{uuid.uuid4().hex[:24]}"


PAID = [RefundState.PENDING_REVIEW, RefundState.APPROVED, RefundState.REFUNDING]


@pytest.fixture(scope="module")
async def app_pool(stack: DevStack) -> AsyncIterator[asyncpg.Pool]:
    """The app's role, as the worker connects (the database is up to date: no migrating)."""
    assert stack.database_url is not None
    pool = await create_pool(stack.database_url)
    yield pool
    await pool.close()


async def hashes(pool: asyncpg.Pool, refund_id: str) -> list[tuple[int, str, str]]:
    rows = await pool.fetch(
        "SELECT seq, prev_hash, row_hash FROM refundflow.audit WHERE refund_id = $1 ORDER BY seq",
        refund_id,
    )
    return [(r["seq"], r["prev_hash"], r["row_hash"]) for r in rows]


async def test_a_retried_write_gets_the_same_hashes_and_is_ignored(app_pool: asyncpg.Pool) -> None:
    store = PostgresRefundStore(app_pool)  # as the worker writes: the app's role
    refund_id = unique_key("rf")
    whole = trail(refund_id, PAID)
    first_two = whole.model_copy(update={"entries": whole.entries[:2]})
    assert await store.record_transitions(first_two) == 2
    stored = await hashes(app_pool, refund_id)
    assert stored[0][1] == GENESIS and stored[1][1] == stored[0][2]

    assert await store.record_transitions(first_two) == 0  # the retry: nothing new
    assert await hashes(app_pool, refund_id) == stored
    assert await store.record_transitions(whole) == 1  # overlaps what is stored
    chained = await hashes(app_pool, refund_id)
    assert chained[:2] == stored and chained[2][1] == stored[1][2]

    report = await verify_chains(app_pool, refund_id)
    assert (report.verified, report.refunds, report.entries) == (True, 1, 3)


async def test_the_owner_too_is_refused_truncate(stack: DevStack) -> None:
    assert stack.database_url is not None
    async with fresh_database(stack.database_url, "truncate") as url:
        pool = await create_pool(url)  # the scratch database's owner, who migrates it
        try:
            await PostgresRefundStore(pool).record_transitions(trail(unique_key("rf"), PAID))
            with pytest.raises(asyncpg.RaiseError, match=r"append-only \(TRUNCATE refused\)"):
                await pool.execute("TRUNCATE refundflow.audit")
            assert await pool.fetchval("SELECT count(*) FROM refundflow.audit") == 3
        finally:
            await pool.close()


async def test_rows_written_before_the_chain_are_chained_by_its_migration(
    stack: DevStack, tmp_path: Path
) -> None:
    """0008 chains the rows already there in SQL; the Python verifier must agree with it."""
    assert stack.database_url is not None
    before = tmp_path / "before-0008"
    before.mkdir()
    for path in sorted(MIGRATIONS.glob("*.sql")):
        if path.name < "0008":
            shutil.copy(path, before)
    async with fresh_database(stack.database_url, "backfill") as url:
        conn = await asyncpg.connect(url)
        try:
            await apply_migrations(conn, before, SCHEMA)
            legacy = await _write_unchained_rows(conn)
            later = [p.name for p in sorted(MIGRATIONS.glob("*.sql")) if p.name >= "0008"]
            assert later[0] == "0008_audit_chain.sql"
            assert await apply_migrations(conn, MIGRATIONS, SCHEMA) == later
            stored = await conn.fetch("SELECT * FROM refundflow.audit ORDER BY refund_id, seq")
        finally:
            await conn.close()
        prev: dict[str, str] = {}
        for row in stored:
            content = AuditContent(*(row[k] for k in AuditContent.__dataclass_fields__))
            expected = row_hash(content, prev.get(row["refund_id"], GENESIS))
            assert (row["prev_hash"], row["row_hash"]) == (
                prev.get(row["refund_id"], GENESIS),
                expected,
            )
            prev[row["refund_id"]] = expected

        pool = await create_pool(url)
        try:
            report = await verify_chains(pool)
            assert (report.verified, report.refunds, report.entries) == (True, 2, legacy)
            # New entries chain on from the migrated ones.
            more = trail("rf_legacy_a", [*PAID, RefundState.COMPLETED])
            more = more.model_copy(update={"entries": more.entries[2:]})
            assert await PostgresRefundStore(pool).record_transitions(more) == 2
            # A writer that does not chain (a worker from before 0008, mid-upgrade): the
            # database chains its rows, several in one statement, as Python would.
            async with pool.acquire() as conn:
                await _write_unchained_rows(conn, refund_ids=("rf_legacy_c", "rf_legacy_c"))
            report = await verify_chains(pool)
            assert (report.verified, report.entries) == (True, 2 * legacy + 2)
            # Entries that name the identity provider behind their actor (migration 0009):
            # chained by the app and by the database alike.
            await _write_vouched_rows(pool)
            report = await verify_chains(pool)
            assert (report.verified, report.entries) == (True, 2 * legacy + 4)
        finally:
            await pool.close()


async def _write_vouched_rows(pool: asyncpg.Pool) -> None:
    """Seq 1 of a refund through the store (chained in Python), seq 2 by a writer that does
    not chain (chained by the database): both name an issuer."""
    issuer = "https://id.example/realms/shop"
    first = trail("rf_vouched", [RefundState.PENDING_REVIEW])
    entry = first.entries[0].model_copy(update={"issuer": issuer})
    await PostgresRefundStore(pool).record_transitions(
        first.model_copy(update={"entries": [entry]})
    )
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO refundflow.audit (refund_id, seq, event, from_state, to_state, at,"
            " actor, source, reason, escalation_level, policy_version, issuer) VALUES"
            " ('rf_vouched', 2, 'approve', 'pending_review', 'approved', now(), 'li', 'api',"
            " 'approved', 0, 'standard@v3#abc', $1)",
            issuer,
        )
        stored = await conn.fetch(
            "SELECT issuer FROM refundflow.audit WHERE refund_id = 'rf_vouched' ORDER BY seq"
        )
    assert [r["issuer"] for r in stored] == [issuer, issuer]


async def _write_unchained_rows(
    conn: asyncpg.Connection, refund_ids: tuple[str, str] = ("rf_legacy_a", "rf_legacy_b")
) -> int:
    """Rows as a version before 0008 wrote them: no hashes, one statement (as its batches).
    Awkward content on purpose. With one refund id twice: seqs 1, 2, 3 of that refund."""
    first, second = refund_ids
    rows = [
        (first, 1, "requested", None, "pending_review", "退款 ✓ 'q' \"x\" 12:3"),
        (first, 2, "approve", "pending_review", "approved", ""),
        (second, 3 if second == first else 1, "requested", None, "pending_review", "a\nb %s"),
    ]
    at = datetime(2026, 2, 3, 4, 5, 6, 7, tzinfo=TOKYO)
    await conn.execute(
        "INSERT INTO refundflow.audit (refund_id, seq, event, from_state, to_state, at,"
        " actor, source, reason, escalation_level, policy_version)"
        " SELECT r, s, e, f, t, a, 'li', 'support', why, lvl, 'standard@v3#abc'"
        " FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[],"
        " $6::timestamptz[], $7::text[], $8::int[]) AS u(r, s, e, f, t, a, why, lvl)",
        *[list(column) for column in zip(*rows, strict=True)][:5],
        [at + timedelta(days=n) for n in range(len(rows))],
        [row[5] for row in rows],
        list(range(len(rows))),
    )
    return len(rows)


async def test_verify_catches_rows_changed_by_hand(stack: DevStack) -> None:
    assert stack.database_url is not None
    async with fresh_database(stack.database_url, "tamper") as url:
        env = {**stack.env(), "DATABASE_URL": url}
        ids = await _four_trails(url)
        code, out, err = await run_cli(env, "audit", "--verify")
        assert (code, out.strip()) == (0, "audit verified: 4 refunds, 13 entries, chains intact")

        await _tamper(url, ids)
        code, out, err = await run_cli(env, "audit", "--verify")
        assert code == 1, err
        assert sorted(out.strip().splitlines()) == sorted(
            [
                f"refund {ids['edited']}: seq 2: content changed"
                " (the entry no longer matches its hash)",
                f"refund {ids['deleted']}: seq 2: row missing (the next entry stored is seq 3)",
                f"refund {ids['rechained']}: seq 3: chain broken"
                " (its link does not match seq 2's hash)",
                f"refund {ids['cut']}: seq 4: row missing (the trail ends at seq 3; the status"
                " projection records entries up to seq 4)",
            ]
        )
        assert err.strip() == "error: audit chains broken: 4 of 4 refunds (11 entries checked)"

        code, out, err = await run_cli(env, "audit", "--verify", "--json")
        report = json.loads(out)
        assert code == 1 and report["verified"] is False and report["entries"] == 11
        assert {(b["refund_id"], b["seq"], b["problem"]) for b in report["broken"]} == {
            (ids["edited"], 2, "content changed"),
            (ids["deleted"], 2, "row missing"),
            (ids["rechained"], 3, "chain broken"),
            (ids["cut"], 4, "row missing"),
        }
        assert json.loads(err)["exit_status"] == 1

        code, out, _ = await run_cli(env, "audit", "--verify", ids["edited"])
        assert (code, out.count("\n")) == (1, 1) and out.startswith(f"refund {ids['edited']}:")
        nobody = "rf_" + "0" * 24
        code, out, err = await run_cli(env, "audit", "--verify", nobody)
        assert (code, err.strip()) == (1, f"error: no audit trail for refund {nobody}")
        code, _, err = await run_cli(env, "audit")
        assert code == 2 and "--verify" in err


async def _four_trails(url: str) -> dict[str, str]:
    pool = await create_pool(url)
    try:
        store = PostgresRefundStore(pool)
        ids = {name: new_refund_id() for name in ("edited", "deleted", "rechained")}
        for refund_id in ids.values():
            await store.record_transitions(trail(refund_id, PAID))
        ids["cut"] = new_refund_id()
        await store.record_transitions(trail(ids["cut"], [*PAID, RefundState.COMPLETED]))
        return ids
    finally:
        await pool.close()


async def _tamper(url: str, ids: dict[str, str]) -> None:
    """What someone with the owner's (or a superuser's) rights could do by hand."""
    conn = await asyncpg.connect(url)
    try:
        # A superuser silences every trigger for the session...
        await conn.execute("SET session_replication_role = replica")
        await conn.execute(
            "UPDATE refundflow.audit SET reason = 'approved 9,999.00 USD'"
            " WHERE refund_id = $1 AND seq = 2",
            ids["edited"],
        )
        delete = "DELETE FROM refundflow.audit WHERE refund_id = $1 AND seq = $2"
        await conn.execute(delete, ids["deleted"], 2)
        await conn.execute(delete, ids["cut"], 4)  # the last entry
        await conn.execute("RESET session_replication_role")
        # ... and the table's owner may switch the append-only trigger off.
        row = await conn.fetchrow(
            "SELECT * FROM refundflow.audit WHERE refund_id = $1 AND seq = 2", ids["rechained"]
        )
        forged = _with_actor(row, "mallory")  # and re-hashed, so the row checks out alone
        async with conn.transaction():
            await conn.execute("ALTER TABLE refundflow.audit DISABLE TRIGGER audit_append_only")
            await conn.execute(
                "UPDATE refundflow.audit SET actor = $3, row_hash = $4"
                " WHERE refund_id = $1 AND seq = $2",
                ids["rechained"], 2, "mallory", row_hash(forged, row["prev_hash"]),
            )  # fmt: skip
            await conn.execute("ALTER TABLE refundflow.audit ENABLE TRIGGER audit_append_only")
    finally:
        await conn.close()


def _with_actor(row: asyncpg.Record, actor: str) -> AuditContent:
    values = {k: row[k] for k in AuditContent.__dataclass_fields__}
    return AuditContent(**{**values, "actor": actor})


async def test_a_refund_through_the_stack_verifies_from_the_cli(
    refunds: RefundClient, sandbox: Sandbox, stack: DevStack, db: asyncpg.Pool
) -> None:
    """The worker writes the chain as the app's role; the CLI checks it as the app's role."""
    order = await sandbox.order(amount=4000)
    status = await refunds.request(make_request(order))
    await wait_for_state(refunds, status.refund_id, "completed")
    await eventually(lambda: hashes(db, status.refund_id), lambda rows: len(rows) == 4)
    code, out, err = await run_cli(stack.env(), "audit", "--verify", status.refund_id)
    assert (code, out.strip()) == (0, "audit verified: 1 refund, 4 entries, chains intact"), err


async def test_an_opening_status_is_no_broken_chain_and_never_replaces_what_the_refund_recorded(
    app_pool: asyncpg.Pool, refunds: RefundClient, sandbox: Sandbox
) -> None:
    """A request answered before its first step (Prefer: respond-async) puts its opening
    status in the projection as of seq 0: no audit rows yet, and that is not tampering."""
    order = await sandbox.order(amount=4000)
    some_view = await refunds.request(make_request(order))
    store, refund_id = PostgresRefundStore(app_pool), new_refund_id()
    whole = trail(refund_id, PAID)
    opened = some_view.model_copy(update={"refund_id": refund_id, "message": "opening"})
    asked_at = whole.projection.requested_at - timedelta(seconds=3)  # the client's clock
    await store.open_status(whole.projection.model_copy(update={"requested_at": asked_at}), opened)
    assert await store.status_view(refund_id) == opened
    report = await verify_chains(app_pool, refund_id)
    assert (report.verified, report.refunds, report.broken) == (True, 0, [])

    recorded = opened.model_copy(update={"message": "recorded"})
    await store.record_transitions(whole.model_copy(update={"view": recorded}))
    await store.open_status(whole.projection, opened)  # an opening that lands late
    assert await store.status_view(refund_id) == recorded
    row = await app_pool.fetchrow(
        "SELECT last_seq, requested_at FROM refundflow.refund_status WHERE refund_id = $1",
        refund_id,
    )
    assert (row["last_seq"], row["requested_at"]) == (3, whole.projection.requested_at)
    report = await verify_chains(app_pool, refund_id)
    assert (report.verified, report.refunds, report.entries) == (True, 1, 3)
