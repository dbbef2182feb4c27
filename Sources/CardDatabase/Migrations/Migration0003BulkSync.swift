/// What a fast bulk sync needs from the schema: cheaper integrity checks on the two tables it
/// fills, a projection watermark, one index fewer to maintain and a small index for submissions.
///
/// Why:
/// - A foreign key checks every inserted row on its own (a look-up per row); on the ledger and
///   the projection that was a third of a bulk sync's database time, and a statement trigger over
///   a transition table still cost a quarter (measured with COPY of 200,000 ledger rows). The
///   merge, the only writer of both tables, now checks once per batch that every agency code it
///   writes is registered (`CentralMerge`), and agencies can no longer be deleted or renamed,
///   which is what the foreign keys also guarded against.
/// - `projection_state` lets a sync write the projection on a second connection, at the same
///   time as the ledger, and still find and repair an interruption between the two commits.
/// - `applications_owner_submitted` served no query (reports filter a period's applications by
///   agency after reading them by `submitted_at`) and cost every projection write.
/// - A submission must pick up events that arrived before it (held as pending). Probing every
///   pending event by application id is a look-up in an index as large as the backlog; events
///   held because their application did not exist yet are now marked, so a submission looks only
///   in the small index of those.
let migration0003BulkSync = Migration(
    version: 3,
    name: "agency checks per batch, events awaiting their application, projection watermark",
    sql: #"""
-- Agencies are permanent: the ledger keeps referring to them.
CREATE FUNCTION cardsync.agencies_are_permanent() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.code = OLD.code THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'agency % cannot be deleted or renamed: the ledger refers to it', OLD.code
        USING ERRCODE = 'restrict_violation';
END
$fn$;
CREATE TRIGGER agencies_permanent BEFORE DELETE OR UPDATE ON cardsync.agencies
    FOR EACH ROW EXECUTE FUNCTION cardsync.agencies_are_permanent();

ALTER TABLE cardsync.ledger DROP CONSTRAINT ledger_agency_code_fkey;
ALTER TABLE cardsync.applications
    DROP CONSTRAINT applications_owning_agency_fkey,
    DROP CONSTRAINT applications_dispatched_to_fkey,
    DROP CONSTRAINT applications_issued_by_fkey;

-- Every report reads a period of applications through applications_submitted and filters
-- agencies afterwards; this index was never chosen, and each projection write paid for it.
DROP INDEX cardsync.applications_owner_submitted;

-- True for an event stored as pending while the centre had no application with its id (it
-- arrived before its submission). Written once, when the event is appended.
ALTER TABLE cardsync.ledger ADD COLUMN awaits_application boolean NOT NULL DEFAULT false;
-- The old append-only rule still lets a pending row change here, and only pending rows change.
UPDATE cardsync.ledger l SET awaits_application = true
WHERE l.outcome = 'pending'
  AND NOT EXISTS (SELECT 1 FROM cardsync.applications a WHERE a.application_id = l.application_id);
CREATE INDEX ledger_pending_before_application ON cardsync.ledger (application_id)
    WHERE outcome = 'pending' AND awaits_application;

-- How far the projection has taken in the ledger. A sync commits a batch's ledger rows and,
-- right after, its projection rows (two connections working at once); if it dies in between,
-- this stays behind max(ledger_id) and the next merge rebuilds the projection from the ledger.
CREATE TABLE cardsync.projection_state (
    only_row          boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    through_ledger_id bigint NOT NULL CHECK (through_ledger_id >= 0)
);
INSERT INTO cardsync.projection_state (through_ledger_id)
SELECT coalesce(max(ledger_id), 0) FROM cardsync.ledger;

-- The append-only rule, now covering the new column too.
CREATE OR REPLACE FUNCTION cardsync.ledger_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the ledger is append-only: events cannot be deleted'
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.outcome <> 'pending'
       OR (NEW.event_id, NEW.application_id, NEW.type, NEW.origin, NEW.agency_code, NEW.seq,
           NEW.occurred_at, NEW.occurred_offset, NEW.recorded_at, NEW.data, NEW.ledger_id,
           NEW.awaits_application)
          IS DISTINCT FROM
          (OLD.event_id, OLD.application_id, OLD.type, OLD.origin, OLD.agency_code, OLD.seq,
           OLD.occurred_at, OLD.occurred_offset, OLD.recorded_at, OLD.data, OLD.ledger_id,
           OLD.awaits_application)
    THEN
        RAISE EXCEPTION 'the ledger is append-only: only a pending event''s outcome may change'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$fn$;
"""#)
