import PostgresClient

/// The bureau's database roles and what each may do (docs/security.md), applied by
/// `cardsync db migrate` and `cardsync db roles`, and checked by `db roles`.
///
/// | role | kind | may |
/// | --- | --- | --- |
/// | owner (whoever runs `db migrate`) | login | change the schema; nothing else needs it |
/// | `cardsync_merge` | group | read everything; append to the ledger; write the projection, conflicts, deliveries and batch outcomes |
/// | `cardsync_bureau` | group, member of `cardsync_merge` | also register agencies and hand out their credentials |
/// | `cardsync_agency` | group of the agencies' login roles | call the agency functions, which act for the caller's own agency only |
///
/// Roles belong to the whole server, grants to this database: both are idempotent here, so
/// running it again repairs a privilege someone changed by hand.
public enum RolePrivileges {
    /// The group roles cardsync relies on, with what each is for (shown by `db roles`).
    public static let groups: [(name: String, purpose: String)] = [
        ("cardsync_merge", "apply staged batches: ledger, projection, conflicts, deliveries"),
        ("cardsync_bureau", "all cardsync_merge may, plus agencies and their credentials"),
        ("cardsync_agency", "agencies' logins: stage own events, read own results"),
    ]

    /// Functions an agency's role calls (each checks that the caller acts for its own agency).
    static let agencyFunctions = [
        "cardsync.session_agency()",
        "cardsync.stage_batch(text, bigint, integer, text)",
        "cardsync.agency_batches(text, bigint)",
        "cardsync.take_batch_results(text)",
        "cardsync.take_expired_reports(text)",
        "cardsync.agency_sync_position(text)",
        "cardsync.record_pull(text, bigint)",
        "cardsync.raise_pushed_seq(text, bigint)",
        "cardsync.agency_deliveries(text, bigint, integer, uuid[])",
        "cardsync.agency_events(text)",
        "cardsync.agency_delivered_events(text)",
        "cardsync.ledger_holds_events(text, uuid[])",
        "cardsync.agency_last_delivery(text)",
    ]

    /// Functions only the merge and the bureau call.
    static let mergeFunctions = ["cardsync.session_is_bureau()", "cardsync.analyze_lookup_columns(text)",
                                 "cardsync.ensure_ledger_partitions(timestamptz, timestamptz)"]
    static let bureauFunctions = ["cardsync.set_agency_credentials(text, text)"]

    /// Tables the merge writes, with the privileges it needs beyond SELECT.
    static let mergeWrites: [(table: String, privileges: String)] = [
        ("cardsync.ledger", "INSERT, UPDATE (outcome)"),
        ("cardsync.applications", "INSERT, UPDATE, DELETE"),
        ("cardsync.conflicts", "INSERT, UPDATE"),
        ("cardsync.deliveries", "INSERT"),
        ("cardsync.agency_sync_state", "INSERT, UPDATE"),
        ("cardsync.projection_state", "UPDATE"),
        ("cardsync.staged_batches", "UPDATE"),
        ("cardsync.staged_lines", "DELETE"),
        ("cardsync.refused_lines", "INSERT"),
    ]

    /// Creates the group roles that are missing (needs CREATEROLE), then grants exactly what
    /// each needs in this database. Runs in one transaction.
    public static func apply(on connection: Connection) throws {
        try connection.withTransaction { conn in
            try createMissingGroups(on: conn)
            var sql = """
                DO $do$ BEGIN
                    IF NOT pg_has_role('cardsync_bureau', 'cardsync_merge', 'MEMBER') THEN
                        GRANT cardsync_merge TO cardsync_bureau;
                    END IF;
                EXCEPTION WHEN OTHERS THEN
                    -- Roles are the server's: another database's migration may grant it at the same moment.
                    IF NOT pg_has_role('cardsync_bureau', 'cardsync_merge', 'MEMBER') THEN RAISE; END IF;
                END $do$;
                GRANT USAGE ON SCHEMA cardsync TO cardsync_merge, cardsync_agency;
                REVOKE ALL ON ALL TABLES IN SCHEMA cardsync FROM cardsync_agency;
                REVOKE ALL ON ALL SEQUENCES IN SCHEMA cardsync FROM cardsync_agency;
                GRANT SELECT ON cardsync.centre_identity, cardsync.schema_migrations TO cardsync_agency;
                GRANT SELECT ON ALL TABLES IN SCHEMA cardsync TO cardsync_merge;
                GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA cardsync TO cardsync_merge;
                GRANT INSERT, UPDATE ON cardsync.agencies TO cardsync_bureau;
                ALTER DEFAULT PRIVILEGES IN SCHEMA cardsync GRANT SELECT ON TABLES TO cardsync_merge;
                ALTER DEFAULT PRIVILEGES IN SCHEMA cardsync GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO cardsync_merge;

                """
            // Connecting (and temporary tables: db verify's scratch) also when PUBLIC may not,
            // as Deploy/bureau/create-central-database.sql sets it up.
            let database = try conn.query("SELECT current_database() AS name").first?.decode(String.self, column: "name") ?? ""
            sql += "GRANT CONNECT, TEMPORARY ON DATABASE \(try conn.escapeIdentifier(database)) TO cardsync_merge, cardsync_agency;\n"
            for (table, privileges) in mergeWrites { sql += "GRANT \(privileges) ON \(table) TO cardsync_merge;\n" }
            for f in agencyFunctions { sql += "GRANT EXECUTE ON FUNCTION \(f) TO cardsync_agency, cardsync_merge;\n" }
            for f in mergeFunctions { sql += "GRANT EXECUTE ON FUNCTION \(f) TO cardsync_merge;\n" }
            for f in bureauFunctions { sql += "GRANT EXECUTE ON FUNCTION \(f) TO cardsync_bureau;\n" }
            // Only constants above: role, table and function names that this file spells out.
            try conn.executeScript(sql)
        }
    }

    private static func createMissingGroups(on conn: Connection) throws {
        let existing = Set(try conn.query("SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])",
                                          [.textArray(groups.map(\.name))]).map { try $0.decode(String.self, column: "rolname") })
        let missing = groups.map(\.name).filter { !existing.contains($0) }
        guard !missing.isEmpty else { return }
        let may = try conn.query("SELECT rolcreaterole OR rolsuper AS may FROM pg_roles WHERE rolname = current_user")
        guard try may.first?.decode(Bool.self, column: "may") == true else {
            throw Failure.cannotCreateRoles(missing: missing)
        }
        for name in missing {
            // Another database's migration on the same server may create it at the same moment.
            try conn.executeScript("""
                DO $do$ BEGIN
                    CREATE ROLE \(try conn.escapeIdentifier(name)) NOLOGIN;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                END $do$
                """)
        }
    }

    public enum Failure: Error, CustomStringConvertible {
        case cannotCreateRoles(missing: [String])

        public var description: String {
            switch self {
            case .cannotCreateRoles(let missing):
                return "the roles \(missing.joined(separator: ", ")) do not exist and this database role may not create roles; "
                    + "ask the server's administrator to run: "
                    + missing.map { "CREATE ROLE \($0) NOLOGIN;" }.joined(separator: " ")
                    + " then run cardsync db roles again"
            }
        }
    }
}
