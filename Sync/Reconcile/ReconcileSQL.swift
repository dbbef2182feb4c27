import PostgresClient
/// The central side of `cardsync reconcile`: per-bucket digests of an agency's event ids and
/// the ids of chosen buckets, each one set-based statement over the checked functions of
/// migration 6 (`agency_events`, `agency_delivered_events`), so that an agency's own role can
/// run them for its own agency and no other.
///
/// `OFFSET 0` keeps each inner query from being inlined, so `md5` runs once per row rather than
/// once per expression that uses it.
///
/// The bucket and hash of an event id come from `md5(uuid_send(event_id))` (32 hex digits):
/// - bucket: the first 8 hex digits as a 32-bit integer, `&` the bucket mask (count − 1);
/// - hash: the next 16 hex digits as a 64-bit integer, XORed over the bucket (`bit_xor`).
/// `EventIDKey` computes the same on the agency's side.
enum ReconcileSQL {
    /// The two expressions over a column `m` holding the md5 text; `$2` is the bucket mask.
    private static let bucket = "(('x' || substr(m, 1, 8))::bit(32)::int & $2::int)"
    private static let hash = "('x' || substr(m, 9, 16))::bit(64)::bigint"

    /// The agency's own events in the ledger (`$1` agency code).
    private static let agencyEvents = """
        SELECT event_id, seq, md5(uuid_send(event_id)) AS m
        FROM cardsync.agency_events($1) OFFSET 0
        """

    /// The decisions delivered to the agency's inbox (`$1` agency code).
    private static let deliveredDecisions = """
        SELECT event_id, delivery_id, md5(uuid_send(event_id)) AS m
        FROM cardsync.agency_delivered_events($1) OFFSET 0
        """

    /// One row (n, x): the whole set's count and XOR, compared first; the buckets are only
    /// needed when it differs. `$1` agency.
    static let eventTotal: PostgresQuery = """
        SELECT count(*) AS n, coalesce(bit_xor(\(unescaped: hash)), 0) AS x FROM (\(unescaped: agencyEvents)) s
        """

    /// One row (n, x) for the agency's delivered decisions. `$1` agency.
    static let decisionTotal: PostgresQuery = """
        SELECT count(*) AS n, coalesce(bit_xor(\(unescaped: hash)), 0) AS x FROM (\(unescaped: deliveredDecisions)) s
        """

    /// Rows (bucket, n, x) for the agency's events. `$1` agency, `$2` bucket mask.
    static let eventDigest: PostgresQuery = """
        SELECT \(unescaped: bucket) AS bucket, count(*) AS n, bit_xor(\(unescaped: hash)) AS x
        FROM (\(unescaped: agencyEvents)) s GROUP BY 1
        """

    /// Rows (bucket, n, x) for the agency's delivered decisions. `$1` agency, `$2` bucket mask.
    static let decisionDigest: PostgresQuery = """
        SELECT \(unescaped: bucket) AS bucket, count(*) AS n, bit_xor(\(unescaped: hash)) AS x
        FROM (\(unescaped: deliveredDecisions)) s GROUP BY 1
        """

    /// Rows (event_id, seq) of the agency's events in the buckets `$3` (int8[]).
    static let eventsInBuckets: PostgresQuery = """
        SELECT event_id, seq FROM (\(unescaped: agencyEvents)) s WHERE \(unescaped: bucket) = ANY($3::int8[])
        """

    /// Rows (event_id, delivery_id) of the agency's delivered decisions in the buckets `$3` (int8[]).
    static let decisionsInBuckets: PostgresQuery = """
        SELECT event_id, delivery_id FROM (\(unescaped: deliveredDecisions)) s WHERE \(unescaped: bucket) = ANY($3::int8[])
        """

    /// Which of the given event ids (`$2` uuid[]) the ledger holds, whoever recorded them:
    /// rows (event_id). `$1` agency.
    static let ledgerEventsByID: PostgresQuery = "SELECT event_id FROM cardsync.ledger_holds_events($1, $2)"
}
