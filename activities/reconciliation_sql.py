"""Reconciliation's one set-based comparison (activities/reconciliation.py runs it): the
provider's ledger, inventory movements and Temporal's closed workflows (temporary tables the
activity loads) against refundflow's records, each disagreement a finding row. $1: the grace
in seconds (refunds changed within it are left to the next run); $2: how long a reservation
without a refund is left alone (ORPHAN_AFTER_SECONDS)."""

from workflows.vocabulary import PERSON_DECIDES

NEWEST_RUN = (
    "SELECT run_id FROM refundflow.reconciliation_runs"
    " WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1"
)
"""The newest finished reconciliation run: its findings are the ones open now (a run still
going, or one that crashed, has no `finished_at`; migration 0016 indexes it)."""

FINDINGS_SQL = """
WITH live AS (
    SELECT refund_id, provider_refund_id, amount, status
    FROM provider_ledger WHERE status NOT IN ('failed', 'canceled') AND refund_id IS NOT NULL
), per_refund AS (
    SELECT refund_id,
           count(*) AS live_count,
           count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
           coalesce(sum(amount) FILTER (WHERE status = 'succeeded'), 0) AS paid,
           min(provider_refund_id) FILTER (WHERE status = 'succeeded') AS succeeded_id
    FROM live GROUP BY refund_id
), settled AS (
    SELECT * FROM refundflow.refund_status WHERE updated_at < now() - make_interval(secs => $1)
)
SELECT 'provider_refunded_not_completed' AS kind, p.refund_id, s.order_id,
       jsonb_strip_nulls(jsonb_build_object(
           'provider_refund_id', coalesce(m.id, p.succeeded_id),
           'state', s.state, 'provider_amount', p.paid,
           'refund_amount', s.amount, 'currency', s.currency,
           -- said, so the escalation does not read as a payment left unrecorded (a trial)
           'not_healed', CASE WHEN s.state = 'refunding' AND m.id IS NULL THEN
               'none of its provider refunds is of its amount (made outside refundflow?):'
               || ' not its payment; have the provider reverse it, then retry' END)) AS details,
       -- Only a provider refund of the refund's amount pays it: one of another amount was
       -- made outside refundflow, and healing would complete the refund as paid in full (a
       -- trial: 1.00 of 100.00); a person decides.
       s.state = 'refunding' AND m.id IS NOT NULL AS healable,
       coalesce(m.id, p.succeeded_id) AS provider_refund_id
FROM per_refund p LEFT JOIN refundflow.refund_status s USING (refund_id)
LEFT JOIN LATERAL (SELECT min(l.provider_refund_id) AS id FROM provider_ledger l
                   WHERE l.refund_id = p.refund_id AND l.status = 'succeeded'
                     AND l.amount = s.amount AND l.currency = s.currency) m ON true
WHERE p.succeeded > 0 AND s.state IS DISTINCT FROM 'completed'
  AND s.state IS DISTINCT FROM 'cancelled'
  AND (s.updated_at IS NULL OR s.updated_at < now() - make_interval(secs => $1))
  -- A refund Temporal ended cannot hear of the payment: its workflow_closed_abnormally
  -- finding records it, once its grace has passed.
  AND NOT EXISTS (SELECT 1 FROM closed_workflows c WHERE c.refund_id = p.refund_id)
  -- Nor is one recorded as paid elsewhere (still restocking) waiting to be paid: the
  -- provider's money is a second payment (paid_elsewhere_and_by_provider).
  AND NOT EXISTS (SELECT 1 FROM refundflow.audit a
                  WHERE a.refund_id = p.refund_id AND a.event = 'paid_elsewhere')
UNION ALL
SELECT 'provider_refund_on_cancelled_refund', p.refund_id, s.order_id,
       jsonb_build_object('provider_refunds', p.live_count, 'provider_paid', p.paid),
       false, NULL
FROM per_refund p JOIN settled s USING (refund_id)
WHERE s.state = 'cancelled'
UNION ALL
SELECT 'duplicate_provider_refunds', refund_id, NULL,
       jsonb_build_object('provider_refunds', live_count), false, NULL
FROM per_refund WHERE live_count > 1
UNION ALL
SELECT 'amount_mismatch', s.refund_id, s.order_id,
       jsonb_build_object('refund_amount', s.amount, 'provider_amount', p.paid,
                          'currency', s.currency), false, NULL
FROM settled s JOIN per_refund p USING (refund_id)
WHERE s.state = 'completed' AND p.succeeded > 0 AND p.paid <> s.amount
UNION ALL
-- Recorded as paid outside the provider, and paid by the provider too (a refund that
-- succeeded late, or one made in its dashboard): the customer was paid twice (a review),
-- whether the refund has completed or still restocks the returned items.
SELECT 'paid_elsewhere_and_by_provider', s.refund_id, s.order_id,
       jsonb_build_object('refund_amount', s.amount, 'provider_paid', p.paid,
                          'currency', s.currency), false, NULL
FROM settled s JOIN per_refund p USING (refund_id)
WHERE s.state IN ('completed', 'refunding') AND p.succeeded > 0
  AND EXISTS (SELECT 1 FROM refundflow.audit a
              WHERE a.refund_id = s.refund_id AND a.event = 'paid_elsewhere')
UNION ALL
SELECT 'completed_without_provider_refund', s.refund_id, s.order_id, '{}'::jsonb, false, NULL
FROM settled s LEFT JOIN per_refund p USING (refund_id)
WHERE s.state = 'completed' AND coalesce(p.succeeded, 0) = 0
  AND NOT EXISTS (SELECT 1 FROM refundflow.audit a  -- paid outside the provider, with proof
                  WHERE a.refund_id = s.refund_id AND a.event = 'paid_elsewhere')
  AND NOT EXISTS (SELECT 1 FROM provider_ledger f WHERE f.refund_id = s.refund_id)
UNION ALL
-- Paid, then taken back by the provider (a bank returned it): reopened once confirmed.
SELECT 'provider_reversed_after_completion', s.refund_id, s.order_id,
       jsonb_build_object('provider_refunds',
           -- in a stable order: an acknowledgement holds for these details exactly
           jsonb_agg(f.provider_refund_id ORDER BY f.provider_refund_id)), true, NULL
FROM settled s JOIN provider_ledger f USING (refund_id)
LEFT JOIN per_refund p USING (refund_id)
WHERE s.state = 'completed' AND coalesce(p.succeeded, 0) = 0
  AND NOT EXISTS (SELECT 1 FROM refundflow.audit a
                  WHERE a.refund_id = s.refund_id AND a.event = 'paid_elsewhere')
GROUP BY s.refund_id, s.order_id
UNION ALL
SELECT 'restock_missing', s.refund_id, s.order_id, '{}'::jsonb, false, NULL
FROM settled s
WHERE s.state = 'completed' AND s.item_received
  AND NOT EXISTS (SELECT 1 FROM stock_moves m WHERE m.reference = s.refund_id)
  -- an amount-only refund names no lines, so it restocks none (a trial: every one flagged)
  AND NOT EXISTS (SELECT 1 FROM refundflow.reservations r
                  WHERE r.refund_id = s.refund_id AND r.basis = 'amount')
UNION ALL
-- Closed unpaid while the warehouse holds its item (received before the approval, then
-- rejected or withdrawn; or after it, the payment refused, then cancelled by an operator):
-- the customer has neither the item nor the money, and nobody was told (a review). A person
-- sends the item back, then acknowledges it.
SELECT 'returned_item_not_refunded', s.refund_id, s.order_id,
       jsonb_build_object('closed_by', (
           SELECT a.event FROM refundflow.audit a
           WHERE a.refund_id = s.refund_id ORDER BY a.seq DESC LIMIT 1),
           'not_healed', 'closed without a refund while the warehouse holds its returned item:'
           || ' send the item back to the customer, or, if they ask again, record it on the'
           || ' new refund (`refundflow received NEW_REFUND`, else it asks them for the item),'
           || ' then `refundflow acknowledge returned_item_not_refunded --refund '
           || s.refund_id || ' --by YOU --reason ...`'), false, NULL
FROM settled s
WHERE s.state = 'cancelled'
  -- The status's flag, or the audit's kept receipt: a run reset to before it wrote the
  -- status without it and closed the refund (a trial: "the item was not returned in time").
  AND (s.item_received OR EXISTS (SELECT 1 FROM refundflow.audit a
                                  WHERE a.refund_id = s.refund_id AND a.event = 'item_received'))
UNION ALL
SELECT 'restock_duplicated', reference, NULL,
       jsonb_build_object('sku', sku, 'movements', count(*)), false, NULL
FROM stock_moves GROUP BY reference, sku HAVING count(*) > 1
UNION ALL
SELECT 'units_refunded_twice', NULL, o.order_id,
       jsonb_build_object('sku', o.sku, 'ordered', o.quantity, 'units', sum(l.quantity),
                          'line_value', o.quantity * o.unit_price, 'value', sum(l.amount),
                          'refunds', jsonb_agg(l.refund_id ORDER BY r.created_at)),
       false, NULL
FROM refundflow.order_lines o
JOIN refundflow.reservation_lines l ON l.order_id = o.order_id AND l.sku = o.sku
JOIN refundflow.reservations r ON r.refund_id = l.refund_id AND r.state <> 'released'
GROUP BY o.order_id, o.sku, o.quantity, o.unit_price
HAVING sum(l.quantity) > o.quantity OR sum(l.amount) > o.quantity * o.unit_price
UNION ALL
SELECT 'provider_money_above_ledger', NULL, p.order_id,
       jsonb_build_object('provider_paid', p.paid, 'accounted_for', coalesce(k.covered, 0),
                          'unaccounted', p.paid - coalesce(k.covered, 0),
                          'ledger', coalesce(k.amount, 0), 'currency', o.currency,
                          'provider_refunds', p.ids),
       false, NULL
FROM (SELECT order_id, sum(amount) AS paid,
             jsonb_agg(provider_refund_id ORDER BY provider_refund_id) AS ids
      FROM provider_ledger WHERE status = 'succeeded' GROUP BY order_id) p
JOIN refundflow.order_ledger o USING (order_id)
-- A hold accounts only for what the provider paid for its own refund: a refund the provider
-- refused holds money it never paid, and must not hide money paid around refundflow (a
-- trial: a refused 35.00 hold made a 10.00 dashboard refund disappear from the findings).
LEFT JOIN (SELECT r.order_id, sum(r.amount) AS amount,
                  sum(least(r.amount, coalesce(f.paid, 0))) AS covered
           FROM refundflow.reservations r LEFT JOIN per_refund f USING (refund_id)
           WHERE r.state <> 'released' GROUP BY r.order_id) k USING (order_id)
WHERE p.paid > coalesce(k.covered, 0)
UNION ALL
-- Invariant 2 as the customer's account sees it: what left the order through the provider
-- (its whole ledger, refundflow's refunds or not) and paid elsewhere (refundflow's records),
-- above the capture. The provider caps its own refunds at the capture, so only money paid
-- elsewhere takes an order past it (a trial's 140.00 of 100.00 read only as "ledger 100.00;
-- accounted_for 40.00; provider_paid 80.00").
SELECT 'paid_above_capture', NULL, o.order_id,
       jsonb_build_object('captured', o.captured_amount, 'out', coalesce(p.paid, 0) + e.amount,
                          'provider_paid', coalesce(p.paid, 0), 'paid_elsewhere', e.amount,
                          'paid_elsewhere_refunds', e.ids, 'currency', o.currency,
                          'provider_refunds', coalesce(p.ids, '[]'::jsonb)),
       false, NULL
FROM (SELECT s.order_id, sum(s.amount) AS amount, jsonb_agg(s.refund_id ORDER BY s.refund_id) AS ids
      FROM (SELECT DISTINCT refund_id FROM refundflow.audit WHERE event = 'paid_elsewhere') a
      JOIN refundflow.refund_status s USING (refund_id)
      GROUP BY s.order_id) e
JOIN refundflow.order_ledger o USING (order_id)
LEFT JOIN (SELECT order_id, sum(amount) AS paid,
                  jsonb_agg(provider_refund_id ORDER BY provider_refund_id) AS ids
           FROM provider_ledger WHERE status = 'succeeded' GROUP BY order_id) p USING (order_id)
WHERE coalesce(p.paid, 0) + e.amount > o.captured_amount
UNION ALL
SELECT 'reservation_without_refund', r.refund_id, r.order_id,
       jsonb_build_object('amount', r.amount, 'reserved_at', r.created_at), true, NULL
FROM refundflow.reservations r
WHERE r.state = 'held'
  AND r.created_at < now() - make_interval(secs => greatest($1, $2))
  AND NOT EXISTS (SELECT 1 FROM refundflow.refund_status s
                  WHERE s.refund_id = r.refund_id AND s.last_seq > 0)
UNION ALL
SELECT 'workflow_closed_abnormally', s.refund_id, s.order_id,
       jsonb_build_object('temporal_status', c.status, 'closed_at', c.closed_at,
                          'run_id', c.run_id,
                          'state', s.state, 'awaiting', s.awaiting),
       true,  -- the heal asks the provider again: cancelled, completed or left to a person
       NULL
FROM closed_workflows c JOIN refundflow.refund_status s USING (refund_id)
WHERE s.state NOT IN ('completed', 'cancelled')
  -- A provider call in flight at the termination may still commit: give it the grace.
  AND c.closed_at < now() - make_interval(secs => $1)
"""


HEALS_SAY = f"ARRAY['not_healed', 'heal_error', 'reopen', '{PERSON_DECIDES}']"
"""What a heal attempt adds to a finding's details (its words, an error, a marker): left out
of what an acknowledgement holds for, so that a run that words it otherwise, or a --no-heal
run, still finds it acknowledged (a review)."""


def acknowledged_as(details: str) -> str:
    """SQL: the part of `details` (a jsonb expression) an acknowledgement holds for."""
    return f"({details} - {HEALS_SAY}::text[])"


def open_now(finding: str) -> str:
    """SQL: the finding (`finding`, an alias) stands: the newest finished run found it and
    did not heal it."""
    return f"({finding}.action <> 'healed' AND {finding}.run_id = ({NEWEST_RUN}))"


def acknowledgement_of(finding: str, acknowledgement: str) -> str:
    """SQL: the acknowledgement row holds for the finding (its kind, its refund or else its
    order, its money details as acknowledged)."""
    k, f = acknowledgement, finding
    return (
        f"{k}.kind = {f}.kind AND {k}.subject = coalesce({f}.refund_id, {f}.order_id)"
        f" AND {k}.details = {acknowledged_as(f + '.details')}"
    )


def left_to_a_person(refund: str) -> str:
    """SQL: the refund (`refund`, a status row's alias) has a finding of the newest finished
    run that was not healed and that nobody acknowledged: reconciliation left it to a person
    (a terminated returns refund, a customer paid twice), which its own escalation level does
    not show. Staff's `list --escalated` and the console's queue of refunds that need a
    person take these too (a trial found such a refund in neither)."""
    # Not a correlated EXISTS: one list of such refunds, hashed once per query, rather
    # than a probe of the findings for every row (the queue reads closed refunds too).
    return f"{refund}.refund_id IN ({refunds_left_to_a_person()})"


def refunds_left_to_a_person() -> str:
    """SQL: the ids of the refunds `left_to_a_person` holds for, as one SELECT (a query
    that asks it in several places reads it once, as a CTE: the console's queue)."""
    return f"""
        SELECT f.refund_id FROM refundflow.findings f
        WHERE f.refund_id IS NOT NULL AND {open_now("f")}
          AND NOT EXISTS (SELECT 1 FROM refundflow.finding_acknowledgements k
                          WHERE {acknowledgement_of("f", "k")})"""
