/// Per-agency isolation: agencies stage, the bureau merges (docs/security.md).
///
/// Why it is built this way:
/// - An agency's login role holds no privilege on any table but two harmless ones (the centre's
///   id and the migration list). Everything it may do is a `SECURITY DEFINER` function below,
///   each of which first checks the caller (`act_for_agency`): an agency role may act for its own
///   agency only, the bureau's roles (and the owner) for any. One path for both, so a sync reads
///   back the same rows whichever role it connects with.
/// - The caller is `session_user`, the role that logged in: inside a definer function
///   `current_user` is the function's owner, and a login role cannot change its session user.
/// - Staged lines are kept exactly as the agency wrote them: the merge validates them again with
///   the same validator the agency used, so a hand-crafted call cannot slip an event past the
///   queue rules, and staging parses nothing. A batch's lines are one value (joined by newlines,
///   which no outbox line holds), stored uncompressed out of line: one row per batch instead of
///   one per event halves what staging costs the server (no per-row header or index entry, one
///   row to delete once merged), and compressing would only spend the CPU the merge needs.
/// - Every definer function has a fixed `search_path` ending in `pg_temp` and names every object
///   with its schema; `EXECUTE` is revoked from PUBLIC in this same transaction, before any
///   other session can see the function.
/// - The grants themselves are in `RolePrivileges` (applied by `db migrate` and `db roles`),
///   because roles belong to the whole server and a DBA may create them before the schema.
///   This migration only takes back what migration 2 gave every agency role.
let migration0006AgencyIsolation = Migration(
    version: 6,
    name: "agencies stage through checked functions, the bureau merges",
    sql: #"""
-- What migration 2 granted to every agency role is taken back: reads and writes go through the
-- functions below from now on.
REVOKE ALL ON ALL TABLES IN SCHEMA cardsync FROM cardsync_agency;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA cardsync FROM cardsync_agency;
REVOKE ALL ON FUNCTION cardsync.set_agency_credentials(text, text) FROM PUBLIC;

-- One row per batch an agency role staged. The merge fills in the outcome, once.
CREATE TABLE cardsync.staged_batches (
    batch_id         bigint PRIMARY KEY,
    agency_code      text NOT NULL,
    staged_by        text NOT NULL,
    line_count       integer NOT NULL CHECK (line_count >= 1),
    max_seq          bigint NOT NULL CHECK (max_seq >= 1),
    staged_at        timestamptz NOT NULL DEFAULT now(),
    merged_at        timestamptz,
    merged_by        text,
    accepted         integer,
    already_present  integer,
    pending          integer,
    conflicts_opened integer,
    refused          integer,
    CHECK ((merged_at IS NULL) = (accepted IS NULL))
);
CREATE SEQUENCE cardsync.staged_batch_id_seq AS bigint OWNED BY cardsync.staged_batches.batch_id;
CREATE INDEX staged_batches_unmerged ON cardsync.staged_batches (batch_id) WHERE merged_at IS NULL;
CREATE INDEX staged_batches_agency ON cardsync.staged_batches (agency_code, batch_id);

-- The lines of each unmerged batch, byte for byte as the queue held them, joined by newlines;
-- deleted by the merge that applies their batch, in the same transaction.
CREATE TABLE cardsync.staged_lines (
    batch_id bigint PRIMARY KEY,
    lines    text NOT NULL
);
ALTER TABLE cardsync.staged_lines ALTER COLUMN lines SET STORAGE EXTERNAL;

-- Staged lines the merge refused (only a client other than cardsync can stage one): kept for
-- the bureau, never lost.
CREATE TABLE cardsync.refused_lines (
    batch_id    bigint NOT NULL,
    position    integer NOT NULL,
    agency_code text NOT NULL,
    line        text NOT NULL,
    reason      text NOT NULL,
    refused_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, position)
);

-- The last batch whose outcome a sync of the agency has reported.
ALTER TABLE cardsync.agency_sync_state ADD COLUMN results_reported_through bigint NOT NULL DEFAULT 0;

-- The agency whose login role this session is (NULL for any other role).
CREATE FUNCTION cardsync.session_agency() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT agency_code FROM cardsync.agency_roles WHERE role_name = session_user
$fn$;
REVOKE ALL ON FUNCTION cardsync.session_agency() FROM PUBLIC;

-- True when the session's role is the schema owner, a superuser, or one of the bureau's.
CREATE FUNCTION cardsync.session_is_bureau() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = session_user AND rolsuper)
        OR EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid = n.nspowner
                   WHERE n.nspname = 'cardsync' AND r.rolname = session_user)
        OR CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'cardsync_merge')
                THEN pg_catalog.pg_has_role(session_user, 'cardsync_merge', 'USAGE') ELSE false END
$fn$;
REVOKE ALL ON FUNCTION cardsync.session_is_bureau() FROM PUBLIC;

-- Refuses a caller that may not act for p_agency: an agency role acts for its own agency only.
CREATE FUNCTION cardsync.act_for_agency(p_agency text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_own text := cardsync.session_agency();
BEGIN
    IF v_own IS NOT NULL THEN
        IF p_agency IS DISTINCT FROM v_own THEN
            RAISE EXCEPTION 'database role % belongs to agency % and may not act for agency %', session_user, v_own, p_agency
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'connect with the role that cardsync agency credentials printed for that agency';
        END IF;
        RETURN;
    END IF;
    IF NOT cardsync.session_is_bureau() THEN
        RAISE EXCEPTION 'database role % is neither an agency''s role nor one of the bureau''s', session_user
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'create agency roles with cardsync agency credentials and bureau roles as members of cardsync_bureau (cardsync db roles)';
    END IF;
END
$fn$;
REVOKE ALL ON FUNCTION cardsync.act_for_agency(text) FROM PUBLIC;

-- An agency stages one batch of validated outbox lines; the database stamps it with the
-- caller's agency, raises the agency's high-water mark and wakes the merge. One statement, so
-- the batch is durable as a whole or not at all.
CREATE FUNCTION cardsync.stage_batch(p_agency text, p_max_seq bigint, p_line_count integer, p_lines text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_own   text := cardsync.session_agency();
    v_count integer;
    v_batch bigint;
BEGIN
    IF v_own IS NULL THEN
        RAISE EXCEPTION 'only an agency''s own database role stages events; database role % is not one', session_user
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'the bureau''s roles and the owner apply a sync''s events directly';
    END IF;
    PERFORM cardsync.act_for_agency(p_agency);
    IF p_lines IS NULL OR p_lines = '' THEN
        RAISE EXCEPTION 'a staged batch needs its lines' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v_count := length(p_lines) - length(replace(p_lines, E'\n', '')) + 1;
    IF v_count IS DISTINCT FROM p_line_count THEN
        RAISE EXCEPTION 'the staged batch holds % lines, not the % announced', v_count, p_line_count
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_count > 100000 THEN
        RAISE EXCEPTION 'a staged batch holds at most 100000 lines, not %', v_count USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_max_seq IS NULL OR p_max_seq < 1 THEN
        RAISE EXCEPTION 'a staged batch needs its greatest seq (at least 1)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_batch := nextval('cardsync.staged_batch_id_seq');
    INSERT INTO cardsync.staged_batches (batch_id, agency_code, staged_by, line_count, max_seq)
    VALUES (v_batch, v_own, session_user, v_count, p_max_seq);
    INSERT INTO cardsync.staged_lines (batch_id, lines) VALUES (v_batch, p_lines);
    PERFORM cardsync.raise_pushed_seq(v_own, p_max_seq);
    PERFORM pg_notify('cardsync_staged', v_own);
    RETURN v_batch;
END
$fn$;
REVOKE ALL ON FUNCTION cardsync.stage_batch(text, bigint, integer, text) FROM PUBLIC;

-- The outcome of the agency's batches after p_after (merged or not), in order.
CREATE FUNCTION cardsync.agency_batches(p_agency text, p_after bigint)
RETURNS TABLE (batch_id bigint, line_count integer, merged boolean, accepted integer, already_present integer,
               pending integer, conflicts_opened integer, refused integer)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    PERFORM cardsync.act_for_agency(p_agency);
    RETURN QUERY
    SELECT b.batch_id, b.line_count, b.merged_at IS NOT NULL, b.accepted, b.already_present, b.pending,
           b.conflicts_opened, b.refused
    FROM cardsync.staged_batches b WHERE b.agency_code = p_agency AND b.batch_id > p_after ORDER BY b.batch_id;
END
$fn$;
REVOKE ALL ON FUNCTION cardsync.agency_batches(text, bigint) FROM PUBLIC;

-- The sums of the agency's merged batches that no sync has reported yet, which count as
-- reported once this commits; also the lines of its batches not merged yet.
CREATE FUNCTION cardsync.take_batch_results(p_agency text)
RETURNS TABLE (accepted bigint, already_present bigint, pending bigint, conflicts_opened bigint, refused bigint,
               unmerged bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_through bigint;
    v_last    bigint;
BEGIN
    PERFORM cardsync.act_for_agency(p_agency);
    INSERT INTO cardsync.agency_sync_state (agency_code) VALUES (p_agency) ON CONFLICT (agency_code) DO NOTHING;
    SELECT s.results_reported_through INTO v_through FROM cardsync.agency_sync_state s
    WHERE s.agency_code = p_agency FOR UPDATE;
    -- Batches of one agency merge in order, so the merged ones after the cursor end where the
    -- first unmerged one starts.
    SELECT coalesce(max(b.batch_id), v_through) INTO v_last FROM cardsync.staged_batches b
    WHERE b.agency_code = p_agency AND b.batch_id > v_through AND b.merged_at IS NOT NULL
      AND b.batch_id < coalesce((SELECT min(u.batch_id) FROM cardsync.staged_batches u
                                 WHERE u.agency_code = p_agency AND u.merged_at IS NULL), 9223372036854775807);
    UPDATE cardsync.agency_sync_state s SET results_reported_through = v_last WHERE s.agency_code = p_agency;
    RETURN QUERY
    SELECT coalesce(sum(b.accepted) FILTER (WHERE b.merged_at IS NOT NULL AND b.batch_id <= v_last), 0)::int8,
           coalesce(sum(b.already_present) FILTER (WHERE b.merged_at IS NOT NULL AND b.batch_id <= v_last), 0)::int8,
           coalesce(sum(b.pending) FILTER (WHERE b.merged_at IS NOT NULL AND b.batch_id <= v_last), 0)::int8,
           coalesce(sum(b.conflicts_opened) FILTER (WHERE b.merged_at IS NOT NULL AND b.batch_id <= v_last), 0)::int8,
           coalesce(sum(b.refused) FILTER (WHERE b.merged_at IS NOT NULL AND b.batch_id <= v_last), 0)::int8,
           coalesce(sum(b.line_count) FILTER (WHERE b.merged_at IS NULL), 0)::int8
    FROM cardsync.staged_batches b WHERE b.agency_code = p_agency AND b.batch_id > v_through;
END
$fn$;
REVOKE ALL ON FUNCTION cardsync.take_batch_results(text) FROM PUBLIC;

-- The pending_expired conflicts concerning the agency that no sync of it has reported yet,
-- whichever merge opened them; they count as reported once this commits. Under the merge lock,
-- so that every conflict with a lower id has committed and none is skipped.
CREATE FUNCTION cardsync.take_expired_reports(p_agency text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_through bigint;
    v_last    bigint;
    v_fresh   bigint;
BEGIN
    PERFORM cardsync.act_for_agency(p_agency);
    PERFORM pg_advisory_xact_lock(7161130658153460327); -- the merge lock, "cardmerg"
    SELECT coalesce((SELECT s.expired_reported_through FROM cardsync.agency_sync_state s WHERE s.agency_code = p_agency), 0)
    INTO v_through;
    SELECT count(*) INTO v_fresh FROM cardsync.conflicts c
    WHERE c.kind = 'pending_expired' AND c.conflict_id > v_through AND p_agency = ANY (c.agency_codes);
    SELECT coalesce(max(c.conflict_id), 0) INTO v_last FROM cardsync.conflicts c;
    IF v_last > v_through THEN
        INSERT INTO cardsync.agency_sync_state (agency_code, expired_reported_through) VALUES (p_agency, v_last)
        ON CONFLICT (agency_code) DO UPDATE
        SET expired_reported_through = GREATEST(cardsync.agency_sync_state.expired_reported_through, EXCLUDED.expired_reported_through);
    END IF;
    RETURN v_fresh;
END
$fn$;
REVOKE ALL ON FUNCTION cardsync.take_expired_reports(text) FROM PUBLIC;

-- The centre's record of the agency's sync.
CREATE FUNCTION cardsync.agency_sync_position(p_agency text)
RETURNS TABLE (pushed_seq bigint, pulled_delivery bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    PERFORM cardsync.act_for_agency(p_agency);
    RETURN QUERY SELECT s.pushed_seq, s.pulled_delivery FROM cardsync.agency_sync_state s WHERE s.agency_code = p_agency;
END
$fn$;
REVOKE ALL ON FUNCTION cardsync.agency_sync_position(text) FROM PUBLIC;

-- Moves the centre's pull cursor for the agency (to where its inbox now ends).
CREATE FUNCTION cardsync.record_pull(p_agency text, p_delivery bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    PERFORM cardsync.act_for_agency(p_agency);
    INSERT INTO cardsync.agency_sync_state (agency_code, pulled_delivery, last_pull_at) VALUES (p_agency, p_delivery, now())
    ON CONFLICT (agency_code) DO UPDATE SET pulled_delivery = EXCLUDED.pulled_delivery, last_pull_at = now();
END
$fn$;
REVOKE ALL ON FUNCTION cardsync.record_pull(text, bigint) FROM PUBLIC;

-- Raises the agency's high-water mark (staging, an in-process merge, a reconcile).
CREATE FUNCTION cardsync.raise_pushed_seq(p_agency text, p_seq bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    PERFORM cardsync.act_for_agency(p_agency);
    INSERT INTO cardsync.agency_sync_state (agency_code, pushed_seq, last_push_at) VALUES (p_agency, p_seq, now())
    ON CONFLICT (agency_code) DO UPDATE
    SET pushed_seq = GREATEST(cardsync.agency_sync_state.pushed_seq, EXCLUDED.pushed_seq), last_push_at = now();
END
$fn$;
REVOKE ALL ON FUNCTION cardsync.raise_pushed_seq(text, bigint) FROM PUBLIC;

-- Deliveries to the agency after p_after (all, or only those of the events p_event_ids), with
-- their ledger rows, in delivery order: what a pull appends to the inbox.
CREATE FUNCTION cardsync.agency_deliveries(p_agency text, p_after bigint, p_limit integer, p_event_ids uuid[] DEFAULT NULL)
RETURNS TABLE (delivery_id bigint, ledger_id bigint, event_id uuid, application_id uuid, type text, agency_code text,
               seq bigint, occurred_us bigint, occurred_offset integer, data text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    PERFORM cardsync.act_for_agency(p_agency);
    RETURN QUERY
    SELECT d.delivery_id, l.ledger_id, l.event_id, l.application_id, l.type, l.agency_code, l.seq,
           (extract(epoch FROM l.occurred_at) * 1000000)::int8, l.occurred_offset, l.data::text
    FROM cardsync.deliveries d JOIN cardsync.ledger l ON l.ledger_id = d.ledger_id
    WHERE d.agency_code = p_agency AND d.delivery_id > p_after
      AND (p_event_ids IS NULL OR l.event_id = ANY (p_event_ids))
    ORDER BY d.delivery_id LIMIT p_limit;
END
$fn$;
REVOKE ALL ON FUNCTION cardsync.agency_deliveries(text, bigint, integer, uuid[]) FROM PUBLIC;

-- The agency's own events in the ledger (reconcile compares them with its outbox).
CREATE FUNCTION cardsync.agency_events(p_agency text) RETURNS TABLE (event_id uuid, seq bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    PERFORM cardsync.act_for_agency(p_agency);
    RETURN QUERY SELECT l.event_id, l.seq FROM cardsync.ledger l WHERE l.agency_code = p_agency;
END
$fn$;
REVOKE ALL ON FUNCTION cardsync.agency_events(text) FROM PUBLIC;

-- The decisions delivered to the agency (reconcile compares them with its inbox).
CREATE FUNCTION cardsync.agency_delivered_events(p_agency text) RETURNS TABLE (event_id uuid, delivery_id bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    PERFORM cardsync.act_for_agency(p_agency);
    RETURN QUERY SELECT l.event_id, d.delivery_id FROM cardsync.deliveries d JOIN cardsync.ledger l ON l.ledger_id = d.ledger_id
    WHERE d.agency_code = p_agency;
END
$fn$;
REVOKE ALL ON FUNCTION cardsync.agency_delivered_events(text) FROM PUBLIC;

-- Which of the given event ids the ledger holds under any agency (reconcile: an outbox event
-- the ledger holds elsewhere was an event_id_reuse, not a loss). Only the ids come back.
CREATE FUNCTION cardsync.ledger_holds_events(p_agency text, p_event_ids uuid[]) RETURNS TABLE (event_id uuid)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    PERFORM cardsync.act_for_agency(p_agency);
    RETURN QUERY SELECT l.event_id FROM cardsync.ledger l WHERE l.event_id = ANY (p_event_ids);
END
$fn$;
REVOKE ALL ON FUNCTION cardsync.ledger_holds_events(text, uuid[]) FROM PUBLIC;

-- The agency's last delivery id (0 when none).
CREATE FUNCTION cardsync.agency_last_delivery(p_agency text) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    PERFORM cardsync.act_for_agency(p_agency);
    RETURN (SELECT coalesce(max(d.delivery_id), 0) FROM cardsync.deliveries d WHERE d.agency_code = p_agency);
END
$fn$;
REVOKE ALL ON FUNCTION cardsync.agency_last_delivery(text) FROM PUBLIC;

-- ANALYZE of the merge's look-up columns for the bureau's roles, which do not own the tables.
CREATE FUNCTION cardsync.analyze_lookup_columns(p_table text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET default_statistics_target = 20 AS $fn$
BEGIN
    IF NOT cardsync.session_is_bureau() THEN
        RAISE EXCEPTION 'only the bureau''s roles analyse the central tables' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_table = 'ledger' THEN
        ANALYZE (SKIP_LOCKED) cardsync.ledger (event_id, application_id, type, outcome, awaits_application);
    ELSIF p_table = 'applications' THEN
        ANALYZE (SKIP_LOCKED) cardsync.applications (application_id, child_id_number, status);
    ELSE
        RAISE EXCEPTION 'no look-up columns known for table %', p_table USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$fn$;
REVOKE ALL ON FUNCTION cardsync.analyze_lookup_columns(text) FROM PUBLIC;

-- Agency credentials are the bureau's to hand out. As the owner (who needs CREATEROLE), with
-- its own check of the caller.
CREATE OR REPLACE FUNCTION cardsync.set_agency_credentials(p_agency text, p_verifier text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_role text := 'cardsync_agency_' || lower(replace(p_agency, '-', '_'));
BEGIN
    IF NOT cardsync.session_is_bureau() OR cardsync.session_agency() IS NOT NULL THEN
        RAISE EXCEPTION 'only the bureau''s roles hand out agency credentials' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM cardsync.agencies WHERE code = p_agency) THEN
        RAISE EXCEPTION 'agency % is not registered', p_agency USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF p_verifier IS NOT NULL AND p_verifier NOT LIKE 'SCRAM-SHA-256$%' THEN
        RAISE EXCEPTION 'an agency password must arrive as a SCRAM-SHA-256 verifier' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = v_role) THEN
            EXECUTE format('CREATE ROLE %I LOGIN IN ROLE cardsync_agency', v_role);
        END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL; -- created a moment ago by another session
    END;
    IF p_verifier IS NULL THEN
        -- Certificate login: no password at all.
        EXECUTE format('ALTER ROLE %I WITH LOGIN PASSWORD NULL', v_role);
    ELSE
        EXECUTE format('ALTER ROLE %I WITH LOGIN PASSWORD %L', v_role, p_verifier);
    END IF;
    INSERT INTO cardsync.agency_roles (agency_code, role_name) VALUES (p_agency, v_role)
    ON CONFLICT (agency_code) DO UPDATE SET rotated_at = now();
    RETURN v_role;
END
$fn$;
REVOKE ALL ON FUNCTION cardsync.set_agency_credentials(text, text) FROM PUBLIC;
"""#)
