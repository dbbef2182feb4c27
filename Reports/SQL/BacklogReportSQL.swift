/// The backlog report (`report backlog`): what is open at one instant, per agency.
///
/// Parameters:
/// - `$1` timestamptz: the instant T (`--as-of`, default now)
/// - `$2` integer: SLA in days
/// - `$3` text or NULL: only this agency
///
/// One row per registered agency ordered by code, then a totals row (`agency_code` NULL).
///
/// Open at T: `submitted_at <= T AND NOT closed_at <= T`. The status of an open application at T
/// is read from its ledger, so a past T shows the status it had then:
/// - `on_hold` while a `duplicate_application` conflict holding it (`detail->>'held'`) was
///   detected at or before T and not resolved by T;
/// - otherwise the status set by its latest applied `submitted`, `approved`, `returned`,
///   `card_produced` or `card_dispatched` event that occurred at or before T, where an applied
///   `amended` after a `returned` moves it back to `submitted`.
/// For T = now this equals the projection's status.
public let backlogReportSQL = #"""
WITH
open_apps AS (
    SELECT a.application_id, a.owning_agency, a.submitted_at
    FROM cardsync.applications a
    WHERE a.closed_at IS NULL AND a.submitted_at <= $1
      AND ($3::text IS NULL OR a.owning_agency = $3::text)
    UNION ALL
    SELECT a.application_id, a.owning_agency, a.submitted_at
    FROM cardsync.applications a
    WHERE a.closed_at > $1 AND a.submitted_at <= $1
      AND ($3::text IS NULL OR a.owning_agency = $3::text)
),
held AS (
    SELECT DISTINCT c.detail->>'held' AS application_id
    FROM cardsync.conflicts c
    WHERE c.kind = 'duplicate_application'
      AND c.detected_at <= $1 AND (c.resolved_at IS NULL OR c.resolved_at > $1)
),
with_status AS (
    SELECT o.owning_agency AS agency_code,
           floor((extract(epoch FROM $1::timestamptz) - extract(epoch FROM o.submitted_at)) / 86400)::bigint AS age,
           CASE
               WHEN h.application_id IS NOT NULL THEN 'on_hold'
               WHEN s.type = 'returned' AND EXISTS (
                   SELECT 1 FROM cardsync.ledger m
                   WHERE m.application_id = o.application_id AND m.type = 'amended'
                     AND m.outcome = 'applied' AND m.occurred_at <= $1
                     AND (m.occurred_at, m.ledger_id) > (s.occurred_at, s.ledger_id)) THEN 'submitted'
               WHEN s.type = 'card_produced' THEN 'produced'
               WHEN s.type = 'card_dispatched' THEN 'dispatched'
               ELSE coalesce(s.type, 'submitted')
           END AS status
    FROM open_apps o
    LEFT JOIN held h ON h.application_id = o.application_id::text
    LEFT JOIN LATERAL (
        SELECT l.type, l.occurred_at, l.ledger_id
        FROM cardsync.ledger l
        WHERE l.application_id = o.application_id AND l.outcome = 'applied' AND l.occurred_at <= $1
          AND l.type IN ('submitted', 'approved', 'returned', 'card_produced', 'card_dispatched')
        ORDER BY l.occurred_at DESC, l.ledger_id DESC
        LIMIT 1
    ) s ON true
),
open_by AS (
    SELECT CASE WHEN grouping(agency_code) = 1 THEN '' ELSE agency_code END AS k,
           count(*) AS open_total,
           count(*) FILTER (WHERE status = 'submitted') AS submitted,
           count(*) FILTER (WHERE status = 'returned') AS returned,
           count(*) FILTER (WHERE status = 'approved') AS approved,
           count(*) FILTER (WHERE status = 'produced') AS produced,
           count(*) FILTER (WHERE status = 'dispatched') AS dispatched,
           count(*) FILTER (WHERE status = 'on_hold') AS on_hold,
           count(*) FILTER (WHERE age <= 7) AS age_0_7,
           count(*) FILTER (WHERE age BETWEEN 8 AND 15) AS age_8_15,
           count(*) FILTER (WHERE age BETWEEN 16 AND 30) AS age_16_30,
           count(*) FILTER (WHERE age >= 31) AS age_31_plus,
           max(age) AS oldest_age_days,
           count(*) FILTER (WHERE age > $2::integer) AS sla_breaches
    FROM with_status GROUP BY GROUPING SETS ((agency_code), ())
),
report_rows AS (
    SELECT code AS agency_code, name AS agency_name, code AS k
    FROM cardsync.agencies
    WHERE $3::text IS NULL OR code = $3::text
    UNION ALL
    SELECT NULL, NULL, ''
)
SELECT r.agency_code, r.agency_name,
       coalesce(o.open_total, 0) AS open_total,
       coalesce(o.submitted, 0) AS submitted,
       coalesce(o.returned, 0) AS returned,
       coalesce(o.approved, 0) AS approved,
       coalesce(o.produced, 0) AS produced,
       coalesce(o.dispatched, 0) AS dispatched,
       coalesce(o.on_hold, 0) AS on_hold,
       coalesce(o.age_0_7, 0) AS age_0_7,
       coalesce(o.age_8_15, 0) AS age_8_15,
       coalesce(o.age_16_30, 0) AS age_16_30,
       coalesce(o.age_31_plus, 0) AS age_31_plus,
       o.oldest_age_days,
       coalesce(o.sla_breaches, 0) AS sla_breaches
FROM report_rows r
LEFT JOIN open_by o ON o.k = r.k
ORDER BY r.agency_code NULLS LAST
"""#
