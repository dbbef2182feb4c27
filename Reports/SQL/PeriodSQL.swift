/// The instants that bound a local calendar month, computed with PostgreSQL's time zone database
/// (so daylight saving time and historical offsets are right), and the current instant.
///
/// Parameters: `$1` integer year, `$2` integer month (1-12), `$3` text time zone.
/// Returns one row: `month_start`, `month_end` (timestamptz; the month is `[month_start, month_end)`),
/// `now`, and the zone's UTC offset in seconds at each (`*_offset`), for printing them as local time.
/// An unknown zone fails with SQLSTATE 22023.
public let monthBoundsSQL = #"""
WITH b AS (
    SELECT make_date($1::integer, $2::integer, 1)::timestamp AT TIME ZONE $3::text AS month_start,
           (make_date($1::integer, $2::integer, 1) + interval '1 month') AT TIME ZONE $3::text AS month_end,
           now() AS now
)
SELECT month_start, month_end, now,
       extract(epoch FROM (month_start AT TIME ZONE $3::text) - (month_start AT TIME ZONE 'UTC'))::integer AS month_start_offset,
       extract(epoch FROM (month_end AT TIME ZONE $3::text) - (month_end AT TIME ZONE 'UTC'))::integer AS month_end_offset,
       extract(epoch FROM (now AT TIME ZONE $3::text) - (now AT TIME ZONE 'UTC'))::integer AS now_offset
FROM b
"""#

/// An instant (default now) and the current time, with the zone's UTC offset at each.
///
/// Parameters: `$1` timestamptz or NULL (NULL: now), `$2` text time zone.
/// Returns `instant`, `instant_offset`, `now`, `now_offset`. An unknown zone fails with SQLSTATE 22023.
public let instantSQL = #"""
WITH b AS (SELECT coalesce($1::timestamptz, now()) AS instant, now() AS now)
SELECT instant, now,
       extract(epoch FROM (instant AT TIME ZONE $2::text) - (instant AT TIME ZONE 'UTC'))::integer AS instant_offset,
       extract(epoch FROM (now AT TIME ZONE $2::text) - (now AT TIME ZONE 'UTC'))::integer AS now_offset
FROM b
"""#

/// A local date-time without an offset (`2026-11-01`, `2026-11-01T08:30`), read in a time zone.
///
/// Parameters: `$1` text, `$2` text time zone. Returns `instant` (timestamptz).
public let localInstantSQL = #"""
SELECT $1::text::timestamp AT TIME ZONE $2::text AS instant
"""#

/// The first instant of the throughput report's period: local midnight of `--from` (the first
/// interval is clipped to start there, see `throughputReportSQL`).
///
/// Parameters: `$1` text `YYYY-MM-DD`, `$2` text time zone.
public let throughputStartSQL = #"""
SELECT $1::date::timestamp AT TIME ZONE $2::text AS period_start
"""#
