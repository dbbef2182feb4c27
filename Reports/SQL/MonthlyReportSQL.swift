/// The monthly issuance report (`report monthly`), one set-based statement over one month.
///
/// Parameters:
/// - `$1` timestamptz: the month's first instant (local midnight of the 1st, see `periodBoundsSQL`)
/// - `$2` timestamptz: the next month's first instant (the month is `[$1, $2)`)
/// - `$3` integer: SLA in days
/// - `$4` text or NULL: only this agency
///
/// One row per registered agency (every one, zeros included) ordered by code, then one totals row
/// whose `agency_code` is NULL. Totals are aggregated over the pooled rows (`GROUPING SETS`), so
/// the totals' percentiles are over every card and a conflict between two agencies counts once.
///
/// Definitions follow ../shared/spec/reports.md:
/// - only ledger events with `outcome = 'applied'` count (a pending or invalid event did not happen);
/// - an application's agency is its owning agency; a `card_issued` counts at `ledger.agency_code`;
/// - open at instant t: `submitted_at <= t AND NOT closed_at <= t`; age: whole days, floored;
/// - `withdrawn` counts applications of the agency that became `withdrawn` in the month, which
///   covers an applied `withdrawn` event and a withdrawal by conflict resolution (at its time);
/// - no column of the application form (names, identity numbers, phones) is ever read.
///
/// Index use (see the schema): applications by `submitted_at` and by `closed_at`, the ledger by
/// `(type, occurred_at)`, conflicts by `detected_at` / `resolved_at`; the open applications come
/// from the open-by-owner partial index plus applications closed after the month started.
public let monthlyReportSQL = #"""
WITH
received AS (
    SELECT a.owning_agency AS agency_code,
           a.application_id::text IN (SELECT c.detail->>'held' FROM cardsync.conflicts c
                                      WHERE c.kind = 'duplicate_application') AS is_duplicate
    FROM cardsync.applications a
    WHERE a.submitted_at >= $1 AND a.submitted_at < $2
      AND ($4::text IS NULL OR a.owning_agency = $4::text)
),
received_by AS (
    SELECT CASE WHEN grouping(agency_code) = 1 THEN '' ELSE agency_code END AS k,
           count(*) AS received,
           count(*) FILTER (WHERE is_duplicate) AS duplicates
    FROM received GROUP BY GROUPING SETS ((agency_code), ())
),
decisions_by AS (
    SELECT CASE WHEN grouping(a.owning_agency) = 1 THEN '' ELSE a.owning_agency END AS k,
           count(*) FILTER (WHERE l.type = 'approved') AS approved,
           count(*) FILTER (WHERE l.type = 'rejected') AS rejected,
           count(*) FILTER (WHERE l.type = 'returned') AS returned,
           count(*) FILTER (WHERE l.type = 'card_produced') AS cards_produced
    FROM cardsync.ledger l
    JOIN cardsync.applications a ON a.application_id = l.application_id
    WHERE l.type IN ('approved', 'rejected', 'returned', 'card_produced')
      AND l.occurred_at >= $1 AND l.occurred_at < $2
      AND l.outcome = 'applied'
      AND ($4::text IS NULL OR a.owning_agency = $4::text)
    GROUP BY GROUPING SETS ((a.owning_agency), ())
),
issued AS (
    SELECT l.agency_code,
           (extract(epoch FROM l.occurred_at) - extract(epoch FROM a.submitted_at))::float8 AS lead_seconds
    FROM cardsync.ledger l
    JOIN cardsync.applications a ON a.application_id = l.application_id
    WHERE l.type = 'card_issued'
      AND l.occurred_at >= $1 AND l.occurred_at < $2
      AND l.outcome = 'applied'
      AND ($4::text IS NULL OR l.agency_code = $4::text)
),
issued_by AS (
    SELECT CASE WHEN grouping(agency_code) = 1 THEN '' ELSE agency_code END AS k,
           count(*) AS cards_issued,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY lead_seconds) / 86400 AS lead_median_days,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY lead_seconds) / 86400 AS lead_p90_days,
           count(*) FILTER (WHERE lead_seconds > $3::integer * 86400.0) AS late_cards
    FROM issued GROUP BY GROUPING SETS ((agency_code), ())
),
closed_by AS (
    SELECT CASE WHEN grouping(a.owning_agency) = 1 THEN '' ELSE a.owning_agency END AS k,
           count(*) AS closed,
           count(*) FILTER (WHERE a.status = 'withdrawn') AS withdrawn
    FROM cardsync.applications a
    WHERE a.closed_at >= $1 AND a.closed_at < $2
      AND ($4::text IS NULL OR a.owning_agency = $4::text)
    GROUP BY GROUPING SETS ((a.owning_agency), ())
),
open_candidates AS (
    SELECT a.owning_agency, a.submitted_at, a.closed_at
    FROM cardsync.applications a
    WHERE a.closed_at IS NULL AND a.submitted_at <= $2
      AND ($4::text IS NULL OR a.owning_agency = $4::text)
    UNION ALL
    SELECT a.owning_agency, a.submitted_at, a.closed_at
    FROM cardsync.applications a
    WHERE a.closed_at > $1 AND a.submitted_at <= $2
      AND ($4::text IS NULL OR a.owning_agency = $4::text)
),
backlog AS (
    SELECT owning_agency AS agency_code,
           (submitted_at <= $1 AND (closed_at IS NULL OR closed_at > $1)) AS open_at_start,
           (closed_at IS NULL OR closed_at > $2) AS open_at_end,
           floor((extract(epoch FROM $2::timestamptz) - extract(epoch FROM submitted_at)) / 86400)::bigint AS age_end
    FROM open_candidates
),
backlog_by AS (
    SELECT CASE WHEN grouping(agency_code) = 1 THEN '' ELSE agency_code END AS k,
           count(*) FILTER (WHERE open_at_start) AS backlog_start,
           count(*) FILTER (WHERE open_at_end) AS backlog_end,
           count(*) FILTER (WHERE open_at_end AND age_end <= 7) AS age_0_7,
           count(*) FILTER (WHERE open_at_end AND age_end BETWEEN 8 AND 15) AS age_8_15,
           count(*) FILTER (WHERE open_at_end AND age_end BETWEEN 16 AND 30) AS age_16_30,
           count(*) FILTER (WHERE open_at_end AND age_end >= 31) AS age_31_plus,
           count(*) FILTER (WHERE open_at_end AND age_end > $3::integer) AS late_open
    FROM backlog GROUP BY GROUPING SETS ((agency_code), ())
),
conflict_rows AS (
    SELECT c.conflict_id, code AS agency_code,
           coalesce(c.detected_at >= $1 AND c.detected_at < $2, false) AS opened,
           coalesce(c.resolved_at >= $1 AND c.resolved_at < $2, false) AS resolved
    FROM cardsync.conflicts c
    CROSS JOIN LATERAL unnest(c.agency_codes) AS code
    WHERE ((c.detected_at >= $1 AND c.detected_at < $2) OR (c.resolved_at >= $1 AND c.resolved_at < $2))
      AND ($4::text IS NULL OR code = $4::text)
),
conflicts_by AS (
    SELECT CASE WHEN grouping(agency_code) = 1 THEN '' ELSE agency_code END AS k,
           count(DISTINCT conflict_id) FILTER (WHERE opened) AS conflicts_opened,
           count(DISTINCT conflict_id) FILTER (WHERE resolved) AS conflicts_resolved
    FROM conflict_rows GROUP BY GROUPING SETS ((agency_code), ())
),
report_rows AS (
    SELECT code AS agency_code, name AS agency_name, code AS k
    FROM cardsync.agencies
    WHERE $4::text IS NULL OR code = $4::text
    UNION ALL
    SELECT NULL, NULL, ''
)
SELECT r.agency_code, r.agency_name,
       coalesce(rc.received, 0) AS received,
       coalesce(rc.duplicates, 0) AS duplicates,
       coalesce(d.approved, 0) AS approved,
       coalesce(d.rejected, 0) AS rejected,
       coalesce(d.returned, 0) AS returned,
       coalesce(cl.withdrawn, 0) AS withdrawn,
       coalesce(d.cards_produced, 0) AS cards_produced,
       coalesce(i.cards_issued, 0) AS cards_issued,
       coalesce(b.backlog_start, 0) AS backlog_start,
       coalesce(b.backlog_end, 0) AS backlog_end,
       coalesce(rc.received, 0) - coalesce(cl.closed, 0) AS net_flow,
       i.lead_median_days,
       i.lead_p90_days,
       coalesce(b.age_0_7, 0) AS age_0_7,
       coalesce(b.age_8_15, 0) AS age_8_15,
       coalesce(b.age_16_30, 0) AS age_16_30,
       coalesce(b.age_31_plus, 0) AS age_31_plus,
       coalesce(b.late_open, 0) + coalesce(i.late_cards, 0) AS sla_breaches,
       coalesce(cf.conflicts_opened, 0) AS conflicts_opened,
       coalesce(cf.conflicts_resolved, 0) AS conflicts_resolved
FROM report_rows r
LEFT JOIN received_by rc ON rc.k = r.k
LEFT JOIN decisions_by d ON d.k = r.k
LEFT JOIN issued_by i ON i.k = r.k
LEFT JOIN closed_by cl ON cl.k = r.k
LEFT JOIN backlog_by b ON b.k = r.k
LEFT JOIN conflicts_by cf ON cf.k = r.k
ORDER BY r.agency_code NULLS LAST
"""#
