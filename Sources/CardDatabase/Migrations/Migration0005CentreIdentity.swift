/// The centre's identity, a child's issued card found by the duplicate rule, and a per-agency
/// cursor of the `pending_expired` conflicts its syncs have reported.
///
/// Why:
/// - `centre_identity` holds a random id made once, when this database is migrated. A queue
///   records it in `state.json` at its first sync, so a sync pointed at a different central
///   database (a typo in the URL, a test server) is refused instead of pushing everything there,
///   while a centre restored from its own backup keeps its id and is recognised.
/// - A submission for a child who already holds an issued card is a `duplicate_application`
///   (lifecycle.md). The merge looks up a batch's children's issued applications through
///   `applications_issued_by_child`; the index holds issued applications only.
/// - The expiry sweep belongs to the merge, which may run during another agency's sync or at the
///   bureau; `expired_reported_through` lets each agency's next sync count the `pending_expired`
///   conflicts opened for its own events exactly once.
let migration0005CentreIdentity = Migration(
    version: 5,
    name: "centre identity, issued cards by child, expiry reports per agency",
    sql: #"""
CREATE TABLE cardsync.centre_identity (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    centre_id  uuid NOT NULL DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO cardsync.centre_identity DEFAULT VALUES;
GRANT SELECT ON cardsync.centre_identity TO cardsync_agency;

CREATE INDEX applications_issued_by_child ON cardsync.applications (child_id_number)
    WHERE status = 'issued';

ALTER TABLE cardsync.agency_sync_state
    ADD COLUMN expired_reported_through bigint NOT NULL DEFAULT 0;
-- Conflicts opened before this migration were already listed; syncs report only new ones.
UPDATE cardsync.agency_sync_state
SET expired_reported_through = (SELECT coalesce(max(conflict_id), 0) FROM cardsync.conflicts);
"""#)
