/// The ledger partitioned by month of `recorded_at` (issue #13), with event_id uniqueness kept
/// in `cardsync.event_ids`, partitions made ahead by the merge and `cardsync db partitions`, a
/// DEFAULT partition, and the bookkeeping that lets an old month be detached and archived.
///
/// Why it is built this way:
/// - The partition key is `recorded_at`, the instant the centre stored the event (the merge's
///   transaction time, `DEFAULT now()`): the merge always writes into the current month, an old
///   month never receives another row, and because `ledger_id` is handed out under the merge
///   lock, each month holds one contiguous run of ledger ids (the replay order is unchanged).
///   `occurred_at` is what reports filter on, but it is written by the agencies and arrives
///   late (an offline counter syncs a week later): keyed by it, no month would ever be closed,
///   and a late event could land in a month already archived.
/// - A unique index on a partitioned table must include the partition key, so `event_id` cannot
///   be unique on the ledger itself any more. `cardsync.event_ids` (event_id primary key, its
///   ledger_id unique) is filled by a statement trigger on the ledger from the inserted rows, in
///   the same statement: whoever writes the ledger (the merge's COPY, the bureau, a test) cannot
///   skip it, a repeated event_id is still a unique violation that rolls the statement back (the
///   merge's optimistic path relies on it), and the keys outlive an archived month, so an event
///   pushed again after its month was archived is still recognised as already present.
/// - `deliveries.ledger_id` cannot reference the partitioned ledger (its unique key now includes
///   `recorded_at`) and a referenced partition could not be detached: it references
///   `event_ids (ledger_id)` instead, which holds every ledger id, archived or not.
/// - The primary key is `(ledger_id, recorded_at)`; `ledger_id` alone stays unique because only
///   the merge lock hands it out, and `event_ids.ledger_id` is unique as well.
/// - Partitions are created by `ensure_ledger_partitions`, a definer function (only the owner may
///   add a partition): the merge calls it for the current and the next month, the owner's
///   `cardsync db partitions create` for as many months ahead as wanted. Rows that found no
///   month (the DEFAULT partition) are moved into the month's partition when it is created.
/// - An archived month leaves in `archived_events` the keys an agency still asks about (its own
///   events, for reconcile) and which applications' whole history left with it (`db verify` and
///   a projection rebuild keep those applications as they are).
/// - This migration converts an existing ledger in place: the rows are copied into the new
///   partitioned table in ledger order, in this one transaction.
let migration0007PartitionedLedger = Migration(
    version: 7,
    name: "ledger partitioned by month, event_id uniqueness in event_ids",
    sql: #"""
ALTER TABLE cardsync.deliveries DROP CONSTRAINT deliveries_ledger_id_fkey;
ALTER TABLE cardsync.ledger RENAME TO ledger_before_partitioning;

CREATE TABLE cardsync.ledger (LIKE cardsync.ledger_before_partitioning INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (recorded_at);

-- Every ledger row's event_id, once: the home of event_id uniqueness.
CREATE TABLE cardsync.event_ids (
    event_id  uuid PRIMARY KEY,
    ledger_id bigint NOT NULL UNIQUE
);

-- Fills event_ids from the rows a statement inserted into the ledger. As the owner: no role
-- writes event_ids directly.
CREATE FUNCTION cardsync.ledger_record_event_ids() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    INSERT INTO cardsync.event_ids (event_id, ledger_id) SELECT n.event_id, n.ledger_id FROM new_rows n;
    RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION cardsync.ledger_record_event_ids() FROM PUBLIC;
CREATE TRIGGER ledger_event_ids AFTER INSERT ON cardsync.ledger
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cardsync.ledger_record_event_ids();

-- Where a row goes when its month has no partition: nothing can ever fail to be stored.
CREATE TABLE cardsync.ledger_default PARTITION OF cardsync.ledger DEFAULT;

-- Creates the monthly partitions (UTC months, named ledger_YYYY_MM) from p_from's month through
-- p_through's, those missing; returns how many it created. Rows of such a month found in the
-- DEFAULT partition move into the new partition. The merge calls it for this month and the
-- next; the owner through cardsync db partitions create. Creating a partition locks the ledger
-- exclusively for a moment: behind a long report it gives up after 5 s (the DEFAULT partition
-- takes the rows meanwhile) instead of stalling every reader queued behind it.
CREATE FUNCTION cardsync.ensure_ledger_partitions(p_from timestamptz, p_through timestamptz) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '5s' AS $fn$
DECLARE
    v_month date;
    v_last  date;
    v_name  text;
    v_lo    timestamptz;
    v_hi    timestamptz;
    v_made  integer := 0;
BEGIN
    IF NOT cardsync.session_is_bureau() THEN
        RAISE EXCEPTION 'only the bureau''s roles create ledger partitions' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_from IS NULL OR p_through IS NULL OR p_through < p_from THEN
        RAISE EXCEPTION 'ledger partitions need a first and a last month, in order' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_month := date_trunc('month', p_from AT TIME ZONE 'UTC')::date;
    v_last := date_trunc('month', p_through AT TIME ZONE 'UTC')::date;
    IF v_last > v_month + interval '20 years' THEN
        RAISE EXCEPTION 'at most 20 years of ledger partitions at once' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WHILE v_month <= v_last LOOP
        v_name := 'ledger_' || to_char(v_month, 'YYYY_MM');
        v_lo := v_month::timestamp AT TIME ZONE 'UTC';
        v_hi := (v_month + interval '1 month')::timestamp AT TIME ZONE 'UTC';
        -- A table of that name (a partition, or a month detached for archiving) is left alone.
        IF to_regclass(format('cardsync.%I', v_name)) IS NULL
           AND to_regclass(format('cardsync_archive.%I', v_name)) IS NULL THEN
            IF EXISTS (SELECT 1 FROM cardsync.ledger_default d WHERE d.recorded_at >= v_lo AND d.recorded_at < v_hi) THEN
                -- The month's rows leave the DEFAULT partition for their own, in this transaction.
                EXECUTE format('CREATE TABLE cardsync.%I (LIKE cardsync.ledger INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', v_name);
                EXECUTE format('INSERT INTO cardsync.%I SELECT * FROM cardsync.ledger_default d WHERE d.recorded_at >= $1 AND d.recorded_at < $2 ORDER BY d.ledger_id', v_name)
                    USING v_lo, v_hi;
                ALTER TABLE cardsync.ledger_default DISABLE TRIGGER ledger_append_only;
                DELETE FROM cardsync.ledger_default d WHERE d.recorded_at >= v_lo AND d.recorded_at < v_hi;
                ALTER TABLE cardsync.ledger_default ENABLE TRIGGER ledger_append_only;
                EXECUTE format('ALTER TABLE cardsync.ledger ATTACH PARTITION cardsync.%I FOR VALUES FROM (%L) TO (%L)', v_name, v_lo, v_hi);
            ELSE
                EXECUTE format('CREATE TABLE cardsync.%I PARTITION OF cardsync.ledger FOR VALUES FROM (%L) TO (%L)', v_name, v_lo, v_hi);
            END IF;
            v_made := v_made + 1;
        END IF;
        v_month := v_month + interval '1 month';
    END LOOP;
    RETURN v_made;
END
$fn$;
REVOKE ALL ON FUNCTION cardsync.ensure_ledger_partitions(timestamptz, timestamptz) FROM PUBLIC;

-- The existing rows, in ledger order, into the months they were recorded in.
SELECT cardsync.ensure_ledger_partitions(
    coalesce((SELECT min(recorded_at) FROM cardsync.ledger_before_partitioning), now()), now() + interval '1 month');
INSERT INTO cardsync.ledger SELECT * FROM cardsync.ledger_before_partitioning ORDER BY ledger_id;
DROP TABLE cardsync.ledger_before_partitioning;

-- The old table's indexes, on every partition (made after the copy: faster). event_id is no
-- longer unique here (event_ids is), but the merge and reconcile still look events up by it.
ALTER TABLE cardsync.ledger ADD CONSTRAINT ledger_pkey PRIMARY KEY (ledger_id, recorded_at);
CREATE INDEX ledger_event_id ON cardsync.ledger (event_id);
CREATE INDEX ledger_application ON cardsync.ledger (application_id, ledger_id);
CREATE INDEX ledger_type_occurred ON cardsync.ledger (type, occurred_at);
CREATE INDEX ledger_agency_seq ON cardsync.ledger (agency_code, seq) WHERE agency_code IS NOT NULL;
CREATE INDEX ledger_pending ON cardsync.ledger (application_id) WHERE outcome = 'pending';
CREATE INDEX ledger_pending_since ON cardsync.ledger (recorded_at) WHERE outcome = 'pending';
CREATE INDEX ledger_pending_before_application ON cardsync.ledger (application_id)
    WHERE outcome = 'pending' AND awaits_application;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON cardsync.ledger
    FOR EACH ROW EXECUTE FUNCTION cardsync.ledger_is_append_only();

ALTER TABLE cardsync.deliveries ADD CONSTRAINT deliveries_ledger_id_fkey
    FOREIGN KEY (ledger_id) REFERENCES cardsync.event_ids (ledger_id);

-- Detached months, for archiving (cardsync db partitions detach): the table moves to this
-- schema, where only the owner reads it, until it is dumped and dropped.
CREATE SCHEMA IF NOT EXISTS cardsync_archive;
REVOKE ALL ON SCHEMA cardsync_archive FROM PUBLIC;

CREATE TABLE cardsync.ledger_archive (
    month           date PRIMARY KEY,
    table_name      text NOT NULL,
    events          bigint NOT NULL,
    first_ledger_id bigint,
    last_ledger_id  bigint,
    detached_at     timestamptz NOT NULL DEFAULT now()
);

-- The keys of archived events that agencies still ask about, and whose application's history
-- left the ledger with them (every event of the application is in an archived month).
CREATE TABLE cardsync.archived_events (
    event_id       uuid PRIMARY KEY,
    ledger_id      bigint NOT NULL,
    application_id uuid NOT NULL,
    agency_code    text,
    seq            bigint,
    month          date NOT NULL
);
CREATE INDEX archived_events_agency ON cardsync.archived_events (agency_code) WHERE agency_code IS NOT NULL;
CREATE INDEX archived_events_application ON cardsync.archived_events (application_id);

-- The agency's own events, archived ones included (reconcile compares them with its outbox).
CREATE OR REPLACE FUNCTION cardsync.agency_events(p_agency text) RETURNS TABLE (event_id uuid, seq bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    PERFORM cardsync.act_for_agency(p_agency);
    RETURN QUERY SELECT l.event_id, l.seq FROM cardsync.ledger l WHERE l.agency_code = p_agency
        UNION ALL
        SELECT a.event_id, a.seq FROM cardsync.archived_events a WHERE a.agency_code = p_agency;
END
$fn$;
REVOKE ALL ON FUNCTION cardsync.agency_events(text) FROM PUBLIC;

-- The decisions delivered to the agency, archived ones included (event_ids has every id).
CREATE OR REPLACE FUNCTION cardsync.agency_delivered_events(p_agency text) RETURNS TABLE (event_id uuid, delivery_id bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    PERFORM cardsync.act_for_agency(p_agency);
    RETURN QUERY SELECT k.event_id, d.delivery_id FROM cardsync.deliveries d JOIN cardsync.event_ids k ON k.ledger_id = d.ledger_id
    WHERE d.agency_code = p_agency;
END
$fn$;
REVOKE ALL ON FUNCTION cardsync.agency_delivered_events(text) FROM PUBLIC;

-- Which of the given event ids the centre holds under any agency, archived or not.
CREATE OR REPLACE FUNCTION cardsync.ledger_holds_events(p_agency text, p_event_ids uuid[]) RETURNS TABLE (event_id uuid)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    PERFORM cardsync.act_for_agency(p_agency);
    RETURN QUERY SELECT k.event_id FROM cardsync.event_ids k WHERE k.event_id = ANY (p_event_ids);
END
$fn$;
REVOKE ALL ON FUNCTION cardsync.ledger_holds_events(text, uuid[]) FROM PUBLIC;
-- What keeps a month of the ledger from being detached for archiving, one row per reason with
-- how many rows or applications it concerns (none: it may go). Owner only.
CREATE FUNCTION cardsync.ledger_month_blockers(p_month date) RETURNS TABLE (reason text, count bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_month date := date_trunc('month', p_month)::date;
    v_name  text := 'ledger_' || to_char(date_trunc('month', p_month), 'YYYY_MM');
    v_n     bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i
                   WHERE i.inhparent = 'cardsync.ledger'::regclass AND i.inhrelid = to_regclass(format('cardsync.%I', v_name))) THEN
        reason := 'the month has no partition attached to the ledger'; count := 1; RETURN NEXT; RETURN;
    END IF;
    IF v_month >= date_trunc('month', now() AT TIME ZONE 'UTC')::date THEN
        reason := 'the month is not over (only months before the current one are archived)'; count := 1; RETURN NEXT;
    END IF;
    EXECUTE format($q$SELECT count(*) FROM cardsync.%I p WHERE p.outcome = 'pending'$q$, v_name) INTO v_n;
    IF v_n > 0 THEN reason := 'events still pending (held for their prerequisite)'; count := v_n; RETURN NEXT; END IF;
    EXECUTE format($q$SELECT count(DISTINCT p.application_id) FROM cardsync.%I p
                      WHERE EXISTS (SELECT 1 FROM cardsync.ledger l
                                    WHERE l.application_id = p.application_id AND l.tableoid <> p.tableoid)$q$, v_name) INTO v_n;
    IF v_n > 0 THEN reason := 'applications with events in other months still in the ledger'; count := v_n; RETURN NEXT; END IF;
    EXECUTE format($q$SELECT count(*) FROM cardsync.applications a
                      WHERE a.closed_at IS NULL AND a.application_id IN (SELECT p.application_id FROM cardsync.%I p)$q$, v_name) INTO v_n;
    IF v_n > 0 THEN reason := 'applications not closed (issued, rejected or withdrawn)'; count := v_n; RETURN NEXT; END IF;
    EXECUTE format($q$SELECT count(*) FROM cardsync.conflicts c
                      WHERE c.status = 'open' AND c.application_ids && ARRAY(SELECT DISTINCT p.application_id FROM cardsync.%I p)$q$, v_name) INTO v_n;
    IF v_n > 0 THEN reason := 'open conflicts about its applications'; count := v_n; RETURN NEXT; END IF;
    EXECUTE format($q$SELECT count(*) FROM cardsync.deliveries d JOIN cardsync.%I p ON p.ledger_id = d.ledger_id
                      LEFT JOIN cardsync.agency_sync_state s ON s.agency_code = d.agency_code
                      WHERE d.delivery_id > coalesce(s.pulled_delivery, 0)$q$, v_name) INTO v_n;
    IF v_n > 0 THEN reason := 'deliveries not yet pulled by their agency'; count := v_n; RETURN NEXT; END IF;
END
$fn$;
REVOKE ALL ON FUNCTION cardsync.ledger_month_blockers(date) FROM PUBLIC;

-- Detaches a month from the ledger into the schema cardsync_archive, when nothing blocks it;
-- keeps its keys in archived_events and a row in ledger_archive. Returns the archived table's
-- name. Owner only; the operator dumps and drops the table afterwards (docs/deploy.md).
CREATE FUNCTION cardsync.detach_ledger_month(p_month date) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_month    date := date_trunc('month', p_month)::date;
    v_name     text := 'ledger_' || to_char(date_trunc('month', p_month), 'YYYY_MM');
    v_blockers text;
BEGIN
    -- No merge may write while the month leaves.
    PERFORM pg_advisory_xact_lock(7161130658153460327); -- the merge lock, "cardmerg"
    SELECT string_agg(b.reason || ' (' || b.count || ')', '; ') INTO v_blockers FROM cardsync.ledger_month_blockers(v_month) b;
    IF v_blockers IS NOT NULL THEN
        RAISE EXCEPTION 'the ledger''s month % cannot be detached yet: %', to_char(v_month, 'YYYY-MM'), v_blockers
            USING ERRCODE = 'object_in_use';
    END IF;
    EXECUTE format($q$INSERT INTO cardsync.archived_events (event_id, ledger_id, application_id, agency_code, seq, month)
                      SELECT p.event_id, p.ledger_id, p.application_id, p.agency_code, p.seq, $1 FROM cardsync.%I p$q$, v_name)
        USING v_month;
    EXECUTE format($q$INSERT INTO cardsync.ledger_archive (month, table_name, events, first_ledger_id, last_ledger_id)
                      SELECT $1, $2, count(*), min(p.ledger_id), max(p.ledger_id) FROM cardsync.%I p$q$, v_name)
        USING v_month, 'cardsync_archive.' || v_name;
    EXECUTE format('ALTER TABLE cardsync.ledger DETACH PARTITION cardsync.%I', v_name);
    EXECUTE format('ALTER TABLE cardsync.%I SET SCHEMA cardsync_archive', v_name);
    RETURN 'cardsync_archive.' || v_name;
END
$fn$;
REVOKE ALL ON FUNCTION cardsync.detach_ledger_month(date) FROM PUBLIC;
"""#)
