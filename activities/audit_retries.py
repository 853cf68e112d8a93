"""A re-sent audit entry against the stored one: the same entry (an activity's retry),
or another run's (a Reset in Temporal) writing one refund's trail."""

from __future__ import annotations

import asyncpg

from workflows.models import RecordTransitionsInput

__all__ = ["AuditConflict", "check_same_entries", "same_entry"]


class AuditConflict(Exception):
    """An entry with this refund id and sequence exists with other content: two runs are
    writing one refund's trail. Never swallowed: the activity keeps failing, visibly."""


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
