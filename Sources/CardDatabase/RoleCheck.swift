import PostgresClient

/// What `cardsync db roles` reports: the roles, their members, and every privilege that differs
/// from the model in `RolePrivileges` (read from the catalog, so a grant made by hand shows).
public struct RoleCheck: Sendable {
    public struct Group: Sendable {
        public var name: String
        public var purpose: String
        public var exists: Bool
        public var canLogin: Bool
        public var members: [String]
    }

    public struct AgencyLogin: Sendable {
        public var agencyCode: String
        public var role: String
        public var exists: Bool
        public var inAgencyGroup: Bool
        public var rotatedAt: PostgresTimestamp
    }

    /// The schema owner: the role `db migrate` ran as.
    public var owner: String
    public var groups: [Group] = []
    public var agencyLogins: [AgencyLogin] = []
    /// Each privilege that differs from the model, in words.
    public var problems: [String] = []

    public var isClean: Bool { problems.isEmpty && groups.allSatisfy { $0.exists && !$0.canLogin } }

    /// Reads the catalog. Changes nothing.
    public static func read(on conn: Connection) throws -> RoleCheck {
        let owner = try conn.query("""
            SELECT r.rolname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE n.nspname = 'cardsync'
            """).first?.decode(String.self, column: "rolname") ?? "?"
        var check = RoleCheck(owner: owner)
        for (name, purpose) in RolePrivileges.groups {
            let rows = try conn.query("""
                SELECT r.rolcanlogin,
                       ARRAY(SELECT m.rolname::text FROM pg_auth_members am JOIN pg_roles m ON m.oid = am.member
                             WHERE am.roleid = r.oid ORDER BY 1) AS members
                FROM pg_roles r WHERE r.rolname = $1
                """, [.text(name)])
            if let row = rows.first {
                check.groups.append(Group(name: name, purpose: purpose, exists: true,
                                          canLogin: try row.decode(Bool.self, column: "rolcanlogin"),
                                          members: try row.decode([String].self, column: "members")))
            } else {
                check.groups.append(Group(name: name, purpose: purpose, exists: false, canLogin: false, members: []))
                check.problems.append("role \(name) does not exist")
            }
        }
        for row in try conn.query("""
            SELECT a.agency_code, a.role_name, a.rotated_at, r.oid IS NOT NULL AS present,
                   coalesce(pg_has_role(r.oid, 'cardsync_agency', 'MEMBER'), false) AS member
            FROM cardsync.agency_roles a LEFT JOIN pg_roles r ON r.rolname = a.role_name
            WHERE EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardsync_agency') ORDER BY a.agency_code
            """) {
            let login = AgencyLogin(agencyCode: try row.decode(String.self, column: "agency_code"),
                                    role: try row.decode(String.self, column: "role_name"),
                                    exists: try row.decode(Bool.self, column: "present"),
                                    inAgencyGroup: try row.decode(Bool.self, column: "member"),
                                    rotatedAt: try row.decode(PostgresTimestamp.self, column: "rotated_at"))
            if !login.exists { check.problems.append("agency \(login.agencyCode)'s role \(login.role) no longer exists: run cardsync agency credentials \(login.agencyCode)") }
            else if !login.inAgencyGroup { check.problems.append("role \(login.role) is not a member of cardsync_agency") }
            check.agencyLogins.append(login)
        }
        guard check.groups.allSatisfy(\.exists) else { return check }
        for row in try conn.query(problemsSQL) {
            check.problems.append(try row.decode(String.self, column: "problem"))
        }
        return check
    }

    /// One row per privilege that differs from the model.
    static let problemsSQL: PostgresQuery = """
        WITH t AS (SELECT c.oid, 'cardsync.' || c.relname AS name, c.relname FROM pg_class c
                   WHERE c.relnamespace = 'cardsync'::regnamespace AND c.relkind IN ('r', 'p', 'v')),
             f AS (SELECT p.oid, p.oid::regprocedure::text AS name, p.prosecdef FROM pg_proc p
                   WHERE p.pronamespace = 'cardsync'::regnamespace)
        SELECT 'cardsync_agency may ' || x.priv || ' ' || t.name || ' (it must not)' AS problem
        FROM t CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS x(priv)
        WHERE has_table_privilege('cardsync_agency', t.oid, x.priv)
          AND NOT (x.priv = 'SELECT' AND t.relname IN ('centre_identity', 'schema_migrations'))
        UNION ALL
        SELECT 'cardsync_merge may not read ' || t.name FROM t WHERE NOT has_table_privilege('cardsync_merge', t.oid, 'SELECT')
        UNION ALL
        SELECT 'cardsync_merge may ' || x.priv || ' ' || t.name || ' (it must not)'
        FROM t CROSS JOIN unnest(ARRAY['TRUNCATE', 'REFERENCES', 'TRIGGER']) AS x(priv)
        WHERE has_table_privilege('cardsync_merge', t.oid, x.priv)
        UNION ALL
        SELECT 'cardsync_merge may delete from the ledger (it must not)'
        WHERE has_table_privilege('cardsync_merge', 'cardsync.ledger', 'DELETE')
        UNION ALL
        SELECT 'PUBLIC may call ' || f.name || ', a function that runs as the owner'
        FROM f WHERE f.prosecdef AND has_function_privilege('public', f.oid, 'EXECUTE')
        UNION ALL
        SELECT 'cardsync_agency may call ' || f.name || ' (the bureau''s)'
        FROM f WHERE f.name IN ('cardsync.set_agency_credentials(text,text)', 'cardsync.analyze_lookup_columns(text)')
          AND has_function_privilege('cardsync_agency', f.oid, 'EXECUTE')
        ORDER BY 1
        """
}
