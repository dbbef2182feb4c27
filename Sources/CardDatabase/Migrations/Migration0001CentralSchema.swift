/// The central schema: agencies, the append-only event ledger, the application projection,
/// conflicts, deliveries to agency inboxes, and per-agency sync state.
///
/// Design notes (why, not what):
/// - `ledger_id`, `delivery_id` and `conflict_id` are handed out only while the merge lock is
///   held, so their order is the order in which events were applied and committed. A pull cursor
///   over `delivery_id` can therefore never skip a row that commits later with a lower id.
/// - The ledger is append-only: a trigger refuses DELETE and any UPDATE except moving `outcome`
///   away from `pending` (an event held for its prerequisite that later applies or fails).
/// - The projection (`applications`) is always a fold of the ledger; `cardsync db verify`
///   rebuilds it and compares. A partial unique index makes two active (not on hold, not
///   terminal) applications for one child impossible, whatever the concurrency.
/// - Indexes are chosen for sync (event_id look-ups, pending events by application, open
///   applications by child) and for reports whose cost must follow one month's data, not the
///   history (events by type and time, applications by submission and closing time).
let migration0001CentralSchema = Migration(
    version: 1,
    name: "central schema",
    sql: #"""
CREATE SCHEMA IF NOT EXISTS cardsync;

CREATE TABLE cardsync.agencies (
    code          text PRIMARY KEY CHECK (code ~ '^[A-Z0-9][A-Z0-9-]{1,31}$'),
    name          text NOT NULL CHECK (name <> ''),
    district      text,
    channel       text NOT NULL DEFAULT 'counter' CHECK (channel IN ('counter', 'online')),
    registered_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cardsync.ledger (
    ledger_id       bigint PRIMARY KEY,
    event_id        uuid NOT NULL,
    application_id  uuid NOT NULL,
    type            text NOT NULL CHECK (type IN (
                        'submitted', 'amended', 'documents_verified', 'withdrawn', 'card_issued',
                        'approved', 'rejected', 'returned', 'card_produced', 'card_dispatched',
                        'conflict_opened', 'conflict_resolved')),
    origin          text NOT NULL CHECK (origin IN ('agency', 'bureau', 'system')),
    -- the agency that recorded the event (agency events only) and its outbox seq
    agency_code     text REFERENCES cardsync.agencies (code),
    seq             bigint,
    occurred_at     timestamptz NOT NULL,
    -- the UTC offset the event was written with, so it can be shown as written
    occurred_offset integer NOT NULL DEFAULT 0,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    data            jsonb NOT NULL CHECK (jsonb_typeof(data) = 'object'),
    -- applied, held for a prerequisite (pending), or never applicable (not_applied)
    outcome         text NOT NULL CHECK (outcome IN ('applied', 'pending', 'not_applied')),
    CHECK ((origin = 'agency') = (agency_code IS NOT NULL)),
    CHECK ((origin = 'agency') = (seq IS NOT NULL AND seq >= 1))
);
CREATE UNIQUE INDEX ledger_event_id ON cardsync.ledger (event_id);
CREATE INDEX ledger_application ON cardsync.ledger (application_id, ledger_id);
CREATE INDEX ledger_type_occurred ON cardsync.ledger (type, occurred_at);
CREATE INDEX ledger_agency_seq ON cardsync.ledger (agency_code, seq) WHERE agency_code IS NOT NULL;
CREATE INDEX ledger_pending ON cardsync.ledger (application_id) WHERE outcome = 'pending';
CREATE INDEX ledger_pending_since ON cardsync.ledger (recorded_at) WHERE outcome = 'pending';

CREATE FUNCTION cardsync.ledger_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the ledger is append-only: events cannot be deleted'
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.outcome <> 'pending'
       OR (NEW.event_id, NEW.application_id, NEW.type, NEW.origin, NEW.agency_code, NEW.seq,
           NEW.occurred_at, NEW.occurred_offset, NEW.recorded_at, NEW.data, NEW.ledger_id)
          IS DISTINCT FROM
          (OLD.event_id, OLD.application_id, OLD.type, OLD.origin, OLD.agency_code, OLD.seq,
           OLD.occurred_at, OLD.occurred_offset, OLD.recorded_at, OLD.data, OLD.ledger_id)
    THEN
        RAISE EXCEPTION 'the ledger is append-only: only a pending event''s outcome may change'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$fn$;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON cardsync.ledger
    FOR EACH ROW EXECUTE FUNCTION cardsync.ledger_is_append_only();

CREATE SEQUENCE cardsync.ledger_id_seq AS bigint;

CREATE TABLE cardsync.applications (
    application_id     uuid PRIMARY KEY,
    owning_agency      text NOT NULL REFERENCES cardsync.agencies (code),
    channel            text NOT NULL CHECK (channel IN ('counter', 'online')),
    child_id_number    text NOT NULL CHECK (length(child_id_number) = 18),
    status             text NOT NULL CHECK (status IN (
                           'submitted', 'returned', 'approved', 'produced', 'dispatched',
                           'issued', 'rejected', 'withdrawn', 'on_hold')),
    -- the status an on_hold application returns to when its duplicate conflict keeps it
    held_status        text CHECK (held_status IN ('submitted', 'returned', 'approved', 'produced', 'dispatched')),
    version            integer NOT NULL CHECK (version >= 1),
    -- the application form as amended: child, guardian, household, documents
    form               jsonb NOT NULL,
    -- per changeable path, the version and instant of its last change (concurrent amendments)
    field_stamps       jsonb NOT NULL DEFAULT '{}',
    verified_documents text[] NOT NULL DEFAULT '{}',
    card_number        text,
    dispatched_to      text REFERENCES cardsync.agencies (code),
    issued_by          text REFERENCES cardsync.agencies (code),
    submitted_at       timestamptz NOT NULL,
    closed_at          timestamptz,
    last_ledger_id     bigint NOT NULL,
    CHECK ((status IN ('issued', 'rejected', 'withdrawn')) = (closed_at IS NOT NULL)),
    CHECK ((status = 'on_hold') = (held_status IS NOT NULL)),
    CHECK (status NOT IN ('produced', 'dispatched', 'issued') OR card_number IS NOT NULL),
    CHECK (status <> 'issued' OR issued_by IS NOT NULL)
);
-- A child's open applications are its active one (at most one, enforced here) and any on hold;
-- the duplicate rule finds them through these two indexes.
CREATE UNIQUE INDEX applications_one_active_per_child ON cardsync.applications (child_id_number)
    WHERE status IN ('submitted', 'returned', 'approved', 'produced', 'dispatched');
CREATE INDEX applications_on_hold_by_child ON cardsync.applications (child_id_number)
    WHERE status = 'on_hold';
CREATE INDEX applications_owner_submitted ON cardsync.applications (owning_agency, submitted_at);
CREATE INDEX applications_submitted ON cardsync.applications (submitted_at);
CREATE INDEX applications_closed ON cardsync.applications (closed_at) WHERE closed_at IS NOT NULL;
CREATE INDEX applications_open_by_owner ON cardsync.applications (owning_agency, submitted_at)
    WHERE closed_at IS NULL;

CREATE TABLE cardsync.conflicts (
    conflict_id     bigint PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('duplicate_application', 'concurrent_amendment',
                        'invalid_transition', 'pending_expired', 'event_id_reuse')),
    status          text NOT NULL CHECK (status IN ('open', 'resolved')),
    application_ids uuid[] NOT NULL,
    agency_codes    text[] NOT NULL,
    event_ids       uuid[] NOT NULL,
    -- ledger rows involved (an event_id_reuse's second event is not in the ledger)
    ledger_ids      bigint[] NOT NULL DEFAULT '{}',
    -- what was applied and what was not; for field merges both values of each field
    detail          jsonb NOT NULL,
    detected_at     timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    resolved_by     text,
    outcome         text CHECK (outcome IN ('keep', 'accept', 'apply_other', 'dismiss', 'applied', 'auto_merged')),
    note            text,
    CHECK ((status = 'resolved') = (resolved_at IS NOT NULL AND outcome IS NOT NULL))
);
CREATE SEQUENCE cardsync.conflict_id_seq AS bigint OWNED BY cardsync.conflicts.conflict_id;
CREATE INDEX conflicts_status_kind ON cardsync.conflicts (status, kind, conflict_id);
CREATE INDEX conflicts_detected ON cardsync.conflicts (detected_at);
CREATE INDEX conflicts_resolved ON cardsync.conflicts (resolved_at) WHERE resolved_at IS NOT NULL;
CREATE INDEX conflicts_agencies ON cardsync.conflicts USING gin (agency_codes);
CREATE INDEX conflicts_ledger_ids ON cardsync.conflicts USING gin (ledger_ids);

-- Decisions waiting to be pulled into an agency's inbox.jsonl, in the order they became due.
CREATE TABLE cardsync.deliveries (
    delivery_id bigint PRIMARY KEY,
    agency_code text NOT NULL REFERENCES cardsync.agencies (code),
    ledger_id   bigint NOT NULL REFERENCES cardsync.ledger (ledger_id),
    UNIQUE (agency_code, ledger_id)
);
CREATE SEQUENCE cardsync.delivery_id_seq AS bigint OWNED BY cardsync.deliveries.delivery_id;
CREATE INDEX deliveries_by_agency ON cardsync.deliveries (agency_code, delivery_id);

-- The centre's view of each agency's sync: the high-water mark of pushed outbox seqs (so a
-- restored centre can tell an agency what it lacks) and the last delivery pulled.
CREATE TABLE cardsync.agency_sync_state (
    agency_code     text PRIMARY KEY REFERENCES cardsync.agencies (code),
    pushed_seq      bigint NOT NULL DEFAULT 0 CHECK (pushed_seq >= 0),
    pulled_delivery bigint NOT NULL DEFAULT 0 CHECK (pulled_delivery >= 0),
    last_push_at    timestamptz,
    last_pull_at    timestamptz
);
"""#
)
