/// The throughput report (`report throughput`): per agency and interval, what came in, what
/// closed, what was issued, and the backlog at the end of each interval.
///
/// Parameters:
/// - `$1` text `YYYY-MM-DD`: the first local date (`--from`)
/// - `$2` text `YYYY-MM-DD`: the last local date, inclusive (`--to`)
/// - `$3` text: `day`, `week` or `month`
/// - `$4` text: the time zone the dates are local to
/// - `$5` text or NULL: only this agency
/// - `$6` timestamptz: the period's start instant, local midnight of `--from` (`throughputStartSQL`), passed as a value
///   so that the planner can range-scan the indexes for the backlog at the period's start
///
/// Intervals are local days, weeks (Monday to Sunday, `date_trunc('week')`) or calendar months,
/// clipped to the requested period: the first one starts on `--from` and the last one ends after
/// `--to`, so a figure never counts a day outside what was asked for (a report from Wednesday
/// Aug 5 must not count the Monday and Tuesday before it). Each is the half-open range from local
/// midnight of its first day to local midnight of the day after its last one; `partial` is true
/// for an interval the clipping shortened (fewer days than a whole week or month).
///
/// Rows: for each agency (every registered one, by code) and then the totals (`agency_code`
/// NULL), one row per interval in order.
///
/// `backlog_end` is "open at the interval's end instant" (`submitted_at <= t AND NOT closed_at <= t`),
/// computed as the backlog at the first interval's start plus a running sum of openings and
/// closings, so its cost follows the period, not the history: over applications with
/// `closed_at IS NULL OR closed_at > submitted_at` (the others are never open), open(t) is
/// `#{submitted_at <= t} - #{closed_at <= t}`.
public let throughputReportSQL = #"""
WITH
intervals AS MATERIALIZED (
    SELECT (row_number() OVER (ORDER BY d))::integer AS idx,
           greatest(d, p.first_day)::date AS local_start,
           least(d + p.step, p.after_last_day)::date AS local_end,
           greatest(d, p.first_day) AT TIME ZONE $4::text AS lo,
           least(d + p.step, p.after_last_day) AT TIME ZONE $4::text AS hi,
           (d < p.first_day OR d + p.step > p.after_last_day) AS partial
    FROM (SELECT $1::date::timestamp AS first_day, $2::date::timestamp + interval '1 day' AS after_last_day,
                 ('1 ' || $3::text)::interval AS step) p
    CROSS JOIN generate_series(date_trunc($3::text, $1::date::timestamp), $2::date::timestamp,
                               ('1 ' || $3::text)::interval) AS d
),
received_by AS (
    SELECT i.idx, CASE WHEN grouping(a.owning_agency) = 1 THEN '' ELSE a.owning_agency END AS k,
           count(*) AS received
    FROM intervals i
    JOIN cardsync.applications a ON a.submitted_at >= i.lo AND a.submitted_at < i.hi
    WHERE $5::text IS NULL OR a.owning_agency = $5::text
    GROUP BY GROUPING SETS ((i.idx, a.owning_agency), (i.idx))
),
closed_by AS (
    SELECT i.idx, CASE WHEN grouping(a.owning_agency) = 1 THEN '' ELSE a.owning_agency END AS k,
           count(*) AS closed
    FROM intervals i
    JOIN cardsync.applications a ON a.closed_at >= i.lo AND a.closed_at < i.hi
    WHERE $5::text IS NULL OR a.owning_agency = $5::text
    GROUP BY GROUPING SETS ((i.idx, a.owning_agency), (i.idx))
),
issued_events AS MATERIALIZED (
    SELECT i.idx, l.agency_code, l.application_id, l.occurred_at
    FROM intervals i
    JOIN cardsync.ledger l ON l.type = 'card_issued' AND l.occurred_at >= i.lo AND l.occurred_at < i.hi
    WHERE l.outcome = 'applied' AND ($5::text IS NULL OR l.agency_code = $5::text)
),
issued AS (
    -- The submission time by primary key, one look-up per card issued in the period: the
    -- interval list is a CTE whose size the planner cannot know, and a hash join would read
    -- every application instead.
    SELECT e.idx, e.agency_code,
           (extract(epoch FROM e.occurred_at)
            - extract(epoch FROM (SELECT a.submitted_at FROM cardsync.applications a
                                  WHERE a.application_id = e.application_id)))::float8 AS lead_seconds
    FROM issued_events e
),
issued_by AS (
    SELECT idx, CASE WHEN grouping(agency_code) = 1 THEN '' ELSE agency_code END AS k,
           count(*) AS cards_issued,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY lead_seconds) / 86400 AS lead_median_days
    FROM issued
    GROUP BY GROUPING SETS ((idx, agency_code), (idx))
),
open_at_period_start AS (
    SELECT CASE WHEN grouping(owning_agency) = 1 THEN '' ELSE owning_agency END AS k, count(*) AS n
    FROM (
        SELECT a.owning_agency FROM cardsync.applications a
        WHERE a.closed_at IS NULL AND a.submitted_at <= $6::timestamptz
          AND ($5::text IS NULL OR a.owning_agency = $5::text)
        UNION ALL
        SELECT a.owning_agency FROM cardsync.applications a
        WHERE a.closed_at > $6::timestamptz AND a.submitted_at <= $6::timestamptz
          AND ($5::text IS NULL OR a.owning_agency = $5::text)
    ) o
    GROUP BY GROUPING SETS ((owning_agency), ())
),
openings AS (
    SELECT i.idx, CASE WHEN grouping(a.owning_agency) = 1 THEN '' ELSE a.owning_agency END AS k,
           count(*) AS n
    FROM intervals i
    JOIN cardsync.applications a ON a.submitted_at > i.lo AND a.submitted_at <= i.hi
    WHERE (a.closed_at IS NULL OR a.closed_at > a.submitted_at)
      AND ($5::text IS NULL OR a.owning_agency = $5::text)
    GROUP BY GROUPING SETS ((i.idx, a.owning_agency), (i.idx))
),
closings AS (
    SELECT i.idx, CASE WHEN grouping(a.owning_agency) = 1 THEN '' ELSE a.owning_agency END AS k,
           count(*) AS n
    FROM intervals i
    JOIN cardsync.applications a ON a.closed_at > i.lo AND a.closed_at <= i.hi
    WHERE a.closed_at > a.submitted_at
      AND ($5::text IS NULL OR a.owning_agency = $5::text)
    GROUP BY GROUPING SETS ((i.idx, a.owning_agency), (i.idx))
),
report_rows AS (
    SELECT code AS agency_code, name AS agency_name, code AS k
    FROM cardsync.agencies
    WHERE $5::text IS NULL OR code = $5::text
    UNION ALL
    SELECT NULL, NULL, ''
)
SELECT r.agency_code, r.agency_name, i.idx, i.local_start::text AS local_start, i.local_end::text AS local_end,
       i.partial,
       coalesce(rc.received, 0) AS received,
       coalesce(cl.closed, 0) AS closed,
       coalesce(iss.cards_issued, 0) AS cards_issued,
       coalesce(s.n, 0) + sum(coalesce(op.n, 0) - coalesce(cs.n, 0))
           OVER (PARTITION BY r.k ORDER BY i.idx) AS backlog_end,
       iss.lead_median_days
FROM report_rows r
CROSS JOIN intervals i
LEFT JOIN received_by rc ON rc.k = r.k AND rc.idx = i.idx
LEFT JOIN closed_by cl ON cl.k = r.k AND cl.idx = i.idx
LEFT JOIN issued_by iss ON iss.k = r.k AND iss.idx = i.idx
LEFT JOIN open_at_period_start s ON s.k = r.k
LEFT JOIN openings op ON op.k = r.k AND op.idx = i.idx
LEFT JOIN closings cs ON cs.k = r.k AND cs.idx = i.idx
ORDER BY r.agency_code NULLS LAST, i.idx
"""#
