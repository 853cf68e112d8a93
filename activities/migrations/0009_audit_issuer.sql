-- Who vouched for the person behind an audited action: the identity provider that issued
-- their token (its `iss`), for actions that came through the API. NULL for everything else
-- (timers, the policy, the provider, the CLI inside the trust boundary, and older rows).
ALTER TABLE refundflow.audit ADD COLUMN issuer text;

-- The chain covers it: the encoding adds the issuer field only when there is one, so every
-- row without one (all rows before this migration) hashes exactly as before.
CREATE OR REPLACE FUNCTION refundflow.audit_row_hash(a refundflow.audit, prev text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT encode(sha256(
        refundflow.audit_field('refundflow.audit.v1')
        || refundflow.audit_field(a.refund_id)
        || refundflow.audit_field(a.seq::text)
        || refundflow.audit_field(a.event)
        || refundflow.audit_field(a.from_state)
        || refundflow.audit_field(a.to_state)
        || refundflow.audit_field(
               to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
        || refundflow.audit_field(a.actor)
        || refundflow.audit_field(a.source)
        || refundflow.audit_field(a.reason)
        || refundflow.audit_field(a.escalation_level::text)
        || refundflow.audit_field(a.policy_version)
        || CASE WHEN a.issuer IS NULL THEN ''::bytea ELSE refundflow.audit_field(a.issuer) END
        || refundflow.audit_field(prev)), 'hex')
$$;
