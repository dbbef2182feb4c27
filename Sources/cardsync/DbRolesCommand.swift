import ArgumentParser
import CardCore
import CardDatabase
import PostgresClient

/// `cardsync db roles`: creates the bureau's group roles and grants, then shows what the
/// catalog says each role may do (docs/security.md).
struct DbRolesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "roles",
        abstract: "Create or check the bureau's database roles (owner, cardsync_bureau, cardsync_merge, cardsync_agency).",
        discussion: """
            Idempotent: creates the group roles that are missing (the owner needs CREATEROLE), grants exactly what \
            each needs, and reports every privilege that differs from the model. Run it with the schema owner's \
            role, after cardsync db migrate. Exit 1 when a problem remains.

            Bureau staff and the merge service log in with roles of their own that are members of a group:
              CREATE ROLE merge_service LOGIN PASSWORD '...' IN ROLE cardsync_merge;
              CREATE ROLE clerk_wang LOGIN PASSWORD '...' IN ROLE cardsync_bureau;
            Agencies get theirs from cardsync agency credentials CODE.

            Examples:
              cardsync db roles --database "$OWNER_URL"
              cardsync db roles --json
            """)

    @OptionGroup var output: OutputFormatOptions
    @Flag(help: "Text: one line per role however wide (default: fitted to the terminal, 100 columns when not a terminal).")
    var wide = false
    @OptionGroup var db: DatabaseOptions

    func run() throws {
        let connection = try db.connect()
        var applyProblem: String?
        do {
            try RolePrivileges.apply(on: connection)
        } catch let failure as RolePrivileges.Failure {
            applyProblem = failure.description
        } catch let error as PostgresError where error.sqlState == "42501" {
            applyProblem = "this database role may not grant the privileges (\(error.message)); run cardsync db roles as the schema owner"
        }
        var check = try RoleCheck.read(on: connection)
        if let applyProblem { check.problems.insert(applyProblem, at: 0) }
        if output.isJSON {
            print(JSONWriter.string(Self.json(check), pretty: true))
        } else {
            print(Self.text(check, width: wide ? nil : OutputWidth.current()))
        }
        if !check.isClean { throw ExitCode(1) }
    }

    static func json(_ c: RoleCheck) -> JSONValue {
        .object([
            "owner": .string(c.owner),
            "groups": .array(c.groups.map { g in
                .object(["role": .string(g.name), "exists": .bool(g.exists), "can_login": .bool(g.canLogin),
                         "members": .array(g.members.map(JSONValue.string)), "purpose": .string(g.purpose)])
            }),
            "agency_roles": .array(c.agencyLogins.map { a in
                .object(["agency_code": .string(a.agencyCode), "role": .string(a.role), "exists": .bool(a.exists),
                         "member_of_cardsync_agency": .bool(a.inAgencyGroup), "rotated_at": .string(Timestamp(microseconds: a.rotatedAt.microsecondsSince1970).rfc3339)])
            }),
            "problems": .array(c.problems.map(JSONValue.string)),
            "ok": .bool(c.isClean),
        ])
    }

    /// With `width`, the members are listed one per line and what a role may do is wrapped, so
    /// that every line fits; nil: one line per role.
    static func text(_ c: RoleCheck, width: Int? = nil) -> String {
        var out = "Schema owner: \(c.owner) (only cardsync db migrate and db roles need it)\n\n"
        out += TextTable(headers: ["role", "exists", "members", "may"],
                         rows: c.groups.map { [$0.name, $0.exists ? "yes" : "NO", $0.members.isEmpty ? "-" : $0.members.joined(separator: ", "), $0.purpose] },
                         maxWidth: width, stacked: [2], freeText: (3, .wrap))
            .render()
        if !c.agencyLogins.isEmpty {
            out += "\n\nAgency roles:\n"
            out += TextTable(headers: ["agency", "role", "state", "rotated"],
                             rows: c.agencyLogins.map {
                                 [$0.agencyCode, $0.role, !$0.exists ? "missing" : ($0.inAgencyGroup ? "ok" : "not in cardsync_agency"),
                                  Timestamp(microseconds: $0.rotatedAt.microsecondsSince1970).rfc3339]
                             }, maxWidth: width).render()
        }
        out += c.problems.isEmpty ? "\n\nEvery privilege matches the model." : "\n\nProblems:\n" + c.problems.map { problem in
            // A problem quotes the server's message: wrapped, continuation lines under its text.
            guard let width else { return "- " + problem }
            return TerminalLayout.wrapped(problem, width: width - 2).enumerated()
                .map { ($0.offset == 0 ? "- " : "  ") + $0.element }.joined(separator: "\n")
        }.joined(separator: "\n")
        return out
    }
}
