import PostgresClient

/// Set-based loaders for a synthetic but consistent central database, used by
/// `cardsync bench report` and by the reports' randomized tests.
///
/// Everything is generated inside PostgreSQL from `generate_series` and a deterministic hash of
/// the row number (`hashint8`), so a given size always yields the same data and nothing is
/// shipped over the wire. Each application's story is consistent with the lifecycle: submitted,
/// sometimes returned and amended, then rejected, withdrawn, held as a duplicate (and withdrawn
/// when the conflict is resolved), or approved, produced, dispatched and issued (5% at another
/// agency). Stages whose time would be after the end of the history have not happened yet, so
/// the most recent applications are open at every stage. Form data carries no personal data.

/// `$1` integer: how many agencies (`BENCH-01`…).
public let benchmarkAgenciesSQL: PostgresQuery = #"""
INSERT INTO cardsync.agencies (code, name, district, channel, registered_at)
SELECT 'BENCH-' || lpad(g::text, 2, '0'),
       CASE WHEN g = $1::integer THEN '网上办事大厅' ELSE '第' || g || '社保卡服务网点' END,
       '区' || g,
       CASE WHEN g = $1::integer THEN 'online' ELSE 'counter' END,
       '2000-01-01T00:00:00Z'
FROM generate_series(1, $1::integer) AS g
"""#

/// Creates the session-local table `bench_apps` that `benchmarkApplicationsTableSQL` fills.
public let benchmarkCreateTableSQL: PostgresQuery = #"""
CREATE TEMP TABLE bench_apps (
    i bigint PRIMARY KEY, application_id uuid NOT NULL, agency text NOT NULL,
    issuing_agency text NOT NULL, other_agency text NOT NULL, fate bigint NOT NULL,
    submitted_at timestamptz NOT NULL, returned_at timestamptz, amended_at timestamptz,
    rejected_at timestamptz, approved_at timestamptz, produced_at timestamptz,
    dispatched_at timestamptz, issued_at timestamptz, withdrawn_at timestamptz,
    held_at timestamptz, resolved_at timestamptz
)
"""#

/// Fills the session-local table `bench_apps`, one row per application with the instant of each
/// stage (NULL when it has not happened by the end of the history).
///
/// `$1` bigint: applications; `$2` integer: agencies; `$3` timestamptz: end of the history;
/// `$4` float8: years of history; `$5` bigint: a seed mixed into every hash.
public let benchmarkApplicationsTableSQL: PostgresQuery = #"""
INSERT INTO bench_apps
WITH base AS (
    SELECT i,
           md5('cardsync-bench-' || $5::bigint || '-' || i)::uuid AS application_id,
           1 + abs(hashint8(i * 97 + $5::bigint * 7919 + 1)) % $2::integer AS agency_no,
           1 + abs(hashint8(i * 97 + $5::bigint * 7919 + 9)) % $2::integer AS other_no,
           abs(hashint8(i * 97 + $5::bigint * 7919 + 2)) % 1000 AS fate,
           abs(hashint8(i * 97 + $5::bigint * 7919 + 3)) AS r1,
           abs(hashint8(i * 97 + $5::bigint * 7919 + 4)) AS r2,
           abs(hashint8(i * 97 + $5::bigint * 7919 + 5)) AS r3,
           abs(hashint8(i * 97 + $5::bigint * 7919 + 6)) AS r4,
           $3::timestamptz - make_interval(secs => $4::float8 * 365.25 * 86400 * (1 - (i - 1)::float8 / $1::bigint))
               - make_interval(secs => abs(hashint8(i * 97 + $5::bigint * 7919 + 7)) % 3600) AS submitted_at
    FROM generate_series(1, $1::bigint) AS i
),
staged AS (
    SELECT b.*,
           CASE WHEN fate BETWEEN 100 AND 159
                THEN submitted_at + make_interval(days => (1 + r1 % 4)::int, secs => r2 % 30000) END AS returned_raw
    FROM base b
),
staged2 AS (
    SELECT s.*,
           returned_raw + make_interval(days => (1 + r3 % 3)::int, secs => r4 % 20000) AS amended_raw,
           coalesce(returned_raw + make_interval(days => (1 + r3 % 3)::int, secs => r4 % 20000), submitted_at)
               + make_interval(days => (1 + r1 % 9)::int, secs => r2 % 40000) AS decided_raw
    FROM staged s
),
staged3 AS (
    SELECT s.*,
           decided_raw + make_interval(days => (2 + r3 % 6)::int, secs => r4 % 30000) AS produced_raw,
           decided_raw + make_interval(days => (2 + r3 % 6 + 1 + r1 % 3)::int, secs => r4 % 30000 + 3600) AS dispatched_raw,
           decided_raw + make_interval(days => (2 + r3 % 6 + 1 + r1 % 3 + r2 % 25)::int, secs => r4 % 30000 + 7200) AS issued_raw,
           submitted_at + make_interval(days => (r3 % 20)::int, secs => 7200 + r4 % 30000) AS withdrawn_raw,
           submitted_at + make_interval(secs => 3600) AS held_raw,
           submitted_at + make_interval(days => (2 + r3 % 10)::int, secs => r4 % 30000) AS resolved_raw
    FROM staged2 s
)
SELECT i, application_id,
       'BENCH-' || lpad(agency_no::text, 2, '0') AS agency,
       'BENCH-' || lpad(CASE WHEN r4 % 20 = 0 AND other_no <> agency_no THEN other_no ELSE agency_no END::text, 2, '0') AS issuing_agency,
       'BENCH-' || lpad(other_no::text, 2, '0') AS other_agency,
       fate, submitted_at,
       CASE WHEN returned_raw <= $3 THEN returned_raw END AS returned_at,
       CASE WHEN amended_raw <= $3 THEN amended_raw END AS amended_at,
       CASE WHEN fate < 50 AND decided_raw <= $3 THEN decided_raw END AS rejected_at,
       CASE WHEN fate >= 80 AND decided_raw <= $3 THEN decided_raw END AS approved_at,
       CASE WHEN fate >= 80 AND produced_raw <= $3 THEN produced_raw END AS produced_at,
       CASE WHEN fate >= 80 AND dispatched_raw <= $3 THEN dispatched_raw END AS dispatched_at,
       CASE WHEN fate >= 80 AND issued_raw <= $3 THEN issued_raw END AS issued_at,
       CASE WHEN fate BETWEEN 50 AND 69 AND withdrawn_raw <= $3 THEN withdrawn_raw END AS withdrawn_at,
       CASE WHEN fate BETWEEN 70 AND 79 AND held_raw <= $3 THEN held_raw END AS held_at,
       CASE WHEN fate BETWEEN 70 AND 79 AND resolved_raw <= $3 THEN resolved_raw END AS resolved_at
FROM staged3
"""#

/// Fills `cardsync.applications` from `bench_apps` (no parameters).
public let benchmarkApplicationsSQL: PostgresQuery = #"""
INSERT INTO cardsync.applications (
    application_id, owning_agency, channel, child_id_number, status, held_status, version, form,
    card_number, dispatched_to, issued_by, submitted_at, closed_at, last_ledger_id)
SELECT application_id, agency, 'counter', lpad(i::text, 18, '0'),
       CASE WHEN issued_at IS NOT NULL THEN 'issued'
            WHEN rejected_at IS NOT NULL THEN 'rejected'
            WHEN withdrawn_at IS NOT NULL OR resolved_at IS NOT NULL THEN 'withdrawn'
            WHEN held_at IS NOT NULL THEN 'on_hold'
            WHEN dispatched_at IS NOT NULL THEN 'dispatched'
            WHEN produced_at IS NOT NULL THEN 'produced'
            WHEN approved_at IS NOT NULL THEN 'approved'
            WHEN returned_at IS NOT NULL AND amended_at IS NULL THEN 'returned'
            ELSE 'submitted' END,
       CASE WHEN held_at IS NOT NULL AND resolved_at IS NULL THEN 'submitted' END,
       1 + (returned_at IS NOT NULL)::int + (amended_at IS NOT NULL)::int + (rejected_at IS NOT NULL)::int
         + (approved_at IS NOT NULL)::int + (produced_at IS NOT NULL)::int + (dispatched_at IS NOT NULL)::int
         + (issued_at IS NOT NULL)::int + (withdrawn_at IS NOT NULL)::int,
       '{"documents": ["birth_certificate", "household_register", "guardian_id", "photo"]}'::jsonb,
       CASE WHEN produced_at IS NOT NULL THEN 'B' || lpad(i::text, 9, '0') END,
       CASE WHEN dispatched_at IS NOT NULL THEN issuing_agency END,
       CASE WHEN issued_at IS NOT NULL THEN issuing_agency END,
       submitted_at,
       coalesce(issued_at, rejected_at, withdrawn_at, resolved_at),
       i * 10 + 9
FROM bench_apps
"""#

/// Fills `cardsync.ledger` from `bench_apps` (no parameters): every stage that happened is one
/// applied event; ledger ids are `application number * 10 + stage`.
public let benchmarkLedgerSQL: PostgresQuery = #"""
INSERT INTO cardsync.ledger (ledger_id, event_id, application_id, type, origin, agency_code, seq,
                             occurred_at, occurred_offset, recorded_at, data, outcome)
SELECT i * 10 + stage, md5('cardsync-bench-event-' || application_id::text || '-' || stage)::uuid,
       application_id, type,
       CASE WHEN type IN ('submitted', 'amended', 'withdrawn', 'card_issued') THEN 'agency' ELSE 'bureau' END,
       CASE WHEN type IN ('submitted', 'amended', 'withdrawn') THEN agency
            WHEN type = 'card_issued' THEN issuing_agency END,
       CASE WHEN type IN ('submitted', 'amended', 'withdrawn', 'card_issued') THEN i * 10 + stage END,
       at, 28800, at, data, 'applied'
FROM bench_apps
CROSS JOIN LATERAL (VALUES
    (1, 'submitted', submitted_at, '{"channel": "counter"}'::jsonb),
    (2, 'returned', returned_at, '{"reason": "photo"}'::jsonb),
    (3, 'amended', amended_at, '{"base_version": 2, "changes": {"documents": ["photo"]}}'::jsonb),
    (4, 'rejected', rejected_at, '{"reason": "documents"}'::jsonb),
    (4, 'approved', approved_at, '{}'::jsonb),
    (5, 'card_produced', produced_at, jsonb_build_object('card_number', 'B' || lpad(i::text, 9, '0'))),
    (6, 'card_dispatched', dispatched_at, jsonb_build_object('agency_code', issuing_agency)),
    (7, 'card_issued', issued_at, jsonb_build_object('card_number', 'B' || lpad(i::text, 9, '0'))),
    (8, 'withdrawn', withdrawn_at, '{"reason": "moved away"}'::jsonb)
) AS e(stage, type, at, data)
WHERE at IS NOT NULL
"""#

/// Fills `cardsync.conflicts` from `bench_apps` (no parameters): one `duplicate_application`
/// conflict per held application, resolved (the other one kept) when its resolution happened.
public let benchmarkConflictsSQL: PostgresQuery = #"""
INSERT INTO cardsync.conflicts (conflict_id, kind, status, application_ids, agency_codes, event_ids,
                                detail, detected_at, resolved_at, resolved_by, outcome)
SELECT i, 'duplicate_application',
       CASE WHEN resolved_at IS NULL THEN 'open' ELSE 'resolved' END,
       ARRAY[application_id, md5('cardsync-bench-kept-' || i)::uuid],
       ARRAY[agency, other_agency],
       ARRAY[md5('cardsync-bench-event-' || application_id::text || '-1')::uuid],
       jsonb_build_object('held', application_id::text, 'kept', md5('cardsync-bench-kept-' || i)::uuid::text),
       held_at, resolved_at,
       CASE WHEN resolved_at IS NOT NULL THEN 'bench' END,
       CASE WHEN resolved_at IS NOT NULL THEN 'keep' END
FROM bench_apps
WHERE held_at IS NOT NULL
"""#
