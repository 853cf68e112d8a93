-- Tamper-evident audit: every row carries the hash of the row before it (of the same refund)
-- and its own. activities/audit_chain.py computes them as the app writes rows, and
-- `refundflow audit --verify` recomputes them. TRUNCATE is refused like UPDATE and DELETE.

ALTER TABLE refundflow.audit ADD COLUMN prev_hash text, ADD COLUMN row_hash text;

-- The encoding of activities/audit_chain.py, in SQL, for rows that arrive without hashes:
-- those already here (chained below, once) and those inserted later by a writer that does
-- not chain (a worker of a version before this one during an upgrade, a hand-made row).
-- tests/integration/test_audit_chain.py checks that both encodings agree.
CREATE FUNCTION refundflow.audit_field(value text) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN value IS NULL THEN convert_to('-', 'UTF8')
        ELSE convert_to(octet_length(convert_to(value, 'UTF8'))::text || ':', 'UTF8')
             || convert_to(value, 'UTF8') END
$$;

CREATE FUNCTION refundflow.audit_row_hash(a refundflow.audit, prev text) RETURNS text
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
        || refundflow.audit_field(prev)), 'hex')
$$;

-- Rows already here, chained in one pass: the chain vouches for them from now on, not for
-- what happened to them before. ADD COLUMN above holds the table's exclusive lock until
-- this migration commits, so no row is written meanwhile.
ALTER TABLE refundflow.audit DISABLE TRIGGER audit_append_only;

DO $$
DECLARE
    r refundflow.audit;
    trail text;
    prev text;
    hash text;
BEGIN
    FOR r IN SELECT * FROM refundflow.audit ORDER BY refund_id, seq LOOP
        IF trail IS DISTINCT FROM r.refund_id THEN
            trail := r.refund_id;
            prev := repeat('0', 64);  -- GENESIS
        END IF;
        hash := refundflow.audit_row_hash(r, prev);
        UPDATE refundflow.audit SET prev_hash = prev, row_hash = hash
            WHERE refund_id = r.refund_id AND seq = r.seq;
        prev := hash;
    END LOOP;
END;
$$;

ALTER TABLE refundflow.audit ENABLE TRIGGER audit_append_only;

ALTER TABLE refundflow.audit
    ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN row_hash SET NOT NULL,
    ADD CONSTRAINT audit_hashes_are_sha256
        CHECK (prev_hash ~ '^[0-9a-f]{64}$' AND row_hash ~ '^[0-9a-f]{64}$');

-- A row inserted without its hashes is chained here, to the row committed before it, under
-- the refund's lock that activities/audit_chain.py takes too (0x52464155, "RFAU").
CREATE FUNCTION refundflow.audit_chain_missing() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.prev_hash IS NULL OR NEW.row_hash IS NULL THEN
        PERFORM pg_advisory_xact_lock(1380335957, hashtext(NEW.refund_id));
        SELECT row_hash INTO NEW.prev_hash FROM refundflow.audit
            WHERE refund_id = NEW.refund_id AND seq < NEW.seq ORDER BY seq DESC LIMIT 1;
        NEW.prev_hash := coalesce(NEW.prev_hash, repeat('0', 64));
        NEW.row_hash := refundflow.audit_row_hash(NEW, NEW.prev_hash);
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER audit_chain_missing
    BEFORE INSERT ON refundflow.audit
    FOR EACH ROW EXECUTE FUNCTION refundflow.audit_chain_missing();

-- A statement-level trigger: TRUNCATE fires no row triggers, so the one above never saw it.
CREATE TRIGGER audit_no_truncate
    BEFORE TRUNCATE ON refundflow.audit
    FOR EACH STATEMENT EXECUTE FUNCTION refundflow.audit_is_append_only();
