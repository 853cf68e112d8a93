"""A re-sent audit entry against the stored one: the same entry (an activity's retry),
or another run's (a Reset in Temporal) writing one refund's trail."""

from __future__ import annotations

import asyncpg

from workflows.models import RecordTransitionsInput

__all__ = ["AuditConflict", "RecordClosedAhead", "check_same_entries", "same_entry"]


class AuditConflict(Exception):
    """An entry with this refund id and sequence exists with other content: two runs are
    writing one refund's trail. Never swallowed: the activity keeps failing, visibly."""


class RecordClosedAhead(AuditConflict):
    """Every entry re-sent is the record's own, and the record goes on past them to close
    the refund: a run reset to before the record's end (a red team: a reversed refund,
    retried and paid, reset to its first task, waited for an operator; the same operator's
    retry was taken for a re-send and recorded nothing)."""

    def __init__(self, refund_id: str, seq: int, event: str, to_state: str) -> None:
        super().__init__(f"refund {refund_id} is {to_state} on its record (entry {seq}, {event})")
        self.seq, self.event, self.to_state = seq, event, to_state


async def check_same_entries(
    conn: asyncpg.Connection, batch: RecordTransitionsInput, inserted: set[int]
) -> None:
    """Entries not inserted must be retries of what is stored, not different transitions
    (`same_entry`); another person's approval at that place is another run's (a Reset in
    Temporal), even when it leads to the same state."""
    resent = {e.seq: e for e in batch.entries if e.seq not in inserted}
    stored = await conn.fetch(
        "SELECT seq, event, to_state, actor, reason FROM refundflow.audit WHERE refund_id = $1"
        " AND seq = ANY($2::int[])",
        batch.refund_id,
        list(resent),
    )
    for row in stored:
        e = resent[row["seq"]]
        if same_entry(e.event, e.state.value, e.actor, e.reason) != same_entry(*row[1:]):
            raise AuditConflict(
                f"refund {batch.refund_id} entry {row['seq']} is already recorded as"
                f" {row['event']} -> {row['to_state']} by {row['actor']}, not {e.event} ->"
                f" {e.state.value} by {e.actor}"
                # Not the words themselves: staff's free text stays out of errors and logs.
                + (" with other words" if row["reason"] != e.reason else "")
            )
    # Older refunds: re-sends are taken as they always were.
    if batch.conflict_is_final and batch.projection.awaiting.value in _PEOPLE:
        await _not_closed_ahead(conn, batch)


async def _not_closed_ahead(conn: asyncpg.Connection, batch: RecordTransitionsInput) -> None:
    """RecordClosedAhead when the record goes past the batch to a closed state. Only a
    reset run re-sends entries behind a longer record (a retried activity re-sends the
    run's latest, and the run writes nothing else until it is answered). Asked only of a
    run about to wait for a person: one that goes on by itself makes the record's own
    decisions again to the same end (an automatic approval, paid: the provider's refund is
    found, nothing sent), while a person acting in one was recorded as nothing."""
    ahead = await conn.fetchrow(
        "SELECT seq, event, to_state FROM refundflow.audit WHERE refund_id = $1 AND seq > $2"
        " ORDER BY seq DESC LIMIT 1",
        batch.refund_id,
        max(e.seq for e in batch.entries),
    )
    if ahead is not None and ahead["to_state"] in _CLOSED:
        raise RecordClosedAhead(batch.refund_id, *ahead.values())


_CLOSED = frozenset({"completed", "cancelled"})
_PEOPLE = frozenset({"reviewer", "customer", "warehouse", "operator"})


# The approvals: their words hold the amount approved (a first of two approvals too: the
# review's second probe, 1500.00 recorded and 2000.00 taken as the same).
_WORDS_COUNT = frozenset({"approve", "first_approval"})


def same_entry(event: str, to_state: str, actor: str, reason: str) -> tuple[str, ...]:
    """What a re-sent entry shares with the stored one when it is a retry: the same event
    to the same state by the same actor (a workflow replays its own decisions exactly),
    and for an approval the same words, the amount approved in them: a reviewer approved
    40.00 of 100.00, the refund was reset in Temporal, she approved 100.00, taken as her
    first approval and paid (a review). A retry re-sends its words (if a deploy changed
    an approval's wording between attempts, the run ends as a reset one would)."""
    words = reason if event in _WORDS_COUNT else ""
    return (event, to_state, actor, words)
