import CardCore
import CardDatabase
import Foundation
import PostgresClient
import TestSupport

/// A fresh, migrated central database and one-line helpers that insert consistent rows with
/// parameterized SQL: agencies, applications (projection rows), ledger events and conflicts.
final class ReportFixture {
    let connection: Connection
    private var nextLedgerId: Int64 = 1
    private var nextSeq: Int64 = 1
    private var nextConflictId: Int64 = 1
    private var nextChild = 1

    init() throws {
        connection = try TestDatabase.connect()
        _ = try Migrator(connection: connection, logger: .test).migrate()
    }

    static func at(_ text: String) -> PostgresTimestamp {
        guard let t = Timestamp(rfc3339: text) else { fatalError("bad timestamp \(text)") }
        return PostgresTimestamp(microsecondsSince1970: t.microseconds)
    }

    func agency(_ code: String, _ name: String) throws {
        try connection.execute("INSERT INTO cardsync.agencies (code, name) VALUES ($1, $2)", [.text(code), .text(name)])
    }

    /// A form with personal data the reports must never print.
    static func form(child: Int) -> String {
        let id = "4301022019031500\(child % 10)X"
        let phone = "1381234\(String(format: "%04d", child))"
        return #"{"child": {"name": "王小明", "id_number": "\#(id)", "birth_date": "2019-03-15", "sex": "M"}, "guardian": {"name": "王建国", "id_number": "43010219880101\#(String(format: "%04d", child))", "relationship": "father", "phone": "\#(phone)"}, "household": {"register_number": "430102000123", "address": "长沙市芙蓉区五一大道100号"}, "documents": ["birth_certificate"]}"#
    }

    /// Personal values written into every form (see `form(child:)`), for leak checks.
    func personalValues() throws -> [String] {
        let rows = try connection.query("""
            SELECT form->'child'->>'id_number' AS a, form->'guardian'->>'id_number' AS b, form->'guardian'->>'phone' AS c
            FROM cardsync.applications
            """)
        return try rows.flatMap { [try $0.decode(String.self, column: "a"), try $0.decode(String.self, column: "b"),
                                   try $0.decode(String.self, column: "c")] }
    }

    /// Inserts a projection row. `status` decides the other columns' consistency.
    @discardableResult
    func application(_ id: UUID, owner: String, submitted: String, status: ApplicationStatus,
                     closed: String? = nil, issuedBy: String? = nil, heldStatus: ApplicationStatus? = nil) throws -> UUID {
        nextChild += 1
        let hasCard = [.produced, .dispatched, .issued].contains(status)
        try connection.execute("""
            INSERT INTO cardsync.applications (application_id, owning_agency, channel, child_id_number, status, held_status,
                version, form, card_number, dispatched_to, issued_by, submitted_at, closed_at, last_ledger_id)
            VALUES ($1, $2, 'counter', $3, $4, $5, 1, $6, $7, $8, $8, $9, $10, 1)
            """, [
                .uuid(id), .text(owner), .text(String(format: "43010220190315%04d", nextChild)), .text(status.rawValue),
                heldStatus.map { .text($0.rawValue) } ?? .null, .json(Self.form(child: nextChild)),
                hasCard ? .text("C\(nextChild)") : .null, (issuedBy ?? (status == .issued ? owner : nil)).map { .text($0) } ?? .null,
                Self.at(submitted).postgresValue, closed.map { Self.at($0).postgresValue } ?? .null,
            ])
        return id
    }

    /// Appends a ledger event. Agency events need `agency`.
    func event(_ app: UUID, _ type: EventType, _ at: String, agency: String? = nil, outcome: String = "applied") throws {
        let origin = type.origin
        let code = origin == .agency ? agency : nil
        try connection.execute("""
            INSERT INTO cardsync.ledger (ledger_id, event_id, application_id, type, origin, agency_code, seq,
                                         occurred_at, data, outcome)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '{}', $9)
            """, [
                .int64(nextLedgerId), .uuid(UUID()), .uuid(app), .text(type.rawValue), .text(origin.rawValue),
                code.map { .text($0) } ?? .null, origin == .agency ? .int64(nextSeq) : .null,
                Self.at(at).postgresValue, .text(outcome),
            ])
        nextLedgerId += 1
        nextSeq += 1
    }

    @discardableResult
    func conflict(_ kind: ConflictKind, agencies: [String], apps: [UUID], detected: String, resolved: String? = nil,
                  held: UUID? = nil, kept: UUID? = nil) throws -> Int64 {
        let id = nextConflictId
        nextConflictId += 1
        var detail = "{}"
        if let held, let kept {
            detail = #"{"held": "\#(held.uuidString.lowercased())", "kept": "\#(kept.uuidString.lowercased())"}"#
        }
        try connection.execute("""
            INSERT INTO cardsync.conflicts (conflict_id, kind, status, application_ids, agency_codes, event_ids, detail,
                                            detected_at, resolved_at, outcome)
            VALUES ($1, $2, $3, $4, $5, '{}', $6, $7, $8, $9)
            """, [
                .int64(id), .text(kind.rawValue), .text(resolved == nil ? "open" : "resolved"), .uuidArray(apps),
                .textArray(agencies), .json(detail), Self.at(detected).postgresValue,
                resolved.map { Self.at($0).postgresValue } ?? .null, resolved == nil ? .null : .text("dismiss"),
            ])
        return id
    }
}

/// The hand-made dataset of MonthlyReportTests; expectations are computed by hand in comments.
enum HandMade {
    static let a = "CS-A"
    static let b = "CS-B"
    static let z = "CS-Z"
    static let aName = "芙蓉区社保卡服务网点"
    static let bName = #"Bank, "West" branch"#
    static let zName = "天心区网点"

    static func id(_ n: Int) -> UUID { UUID(uuidString: String(format: "00000000-0000-4000-8000-%012d", n))! }

    /// Month 2026-10 in Asia/Shanghai is [2026-09-30T16:00Z, 2026-10-31T16:00Z).
    static func load(into f: ReportFixture) throws {
        try f.agency(a, aName)
        try f.agency(b, bName)
        try f.agency(z, zName)
        // a1 (A): submitted exactly at local midnight of Oct 1; issued by A, lead 15 days.
        try f.application(id(1), owner: a, submitted: "2026-09-30T16:00:00Z", status: .issued, closed: "2026-10-15T16:00:00Z")
        try f.event(id(1), .submitted, "2026-09-30T16:00:00Z", agency: a)
        try f.event(id(1), .approved, "2026-10-02T02:00:00Z")
        try f.event(id(1), .cardProduced, "2026-10-05T00:00:00Z")
        try f.event(id(1), .cardDispatched, "2026-10-06T00:00:00Z")
        try f.event(id(1), .cardIssued, "2026-10-15T16:00:00Z", agency: a)
        // a2 (A): one second before local midnight (September); issued by B, lead 20 days.
        try f.application(id(2), owner: a, submitted: "2026-09-30T15:59:59Z", status: .issued, closed: "2026-10-20T15:59:59Z", issuedBy: b)
        try f.event(id(2), .submitted, "2026-09-30T15:59:59Z", agency: a)
        try f.event(id(2), .approved, "2026-10-01T01:00:00Z")
        try f.event(id(2), .cardProduced, "2026-10-03T00:00:00Z")
        try f.event(id(2), .cardDispatched, "2026-10-04T00:00:00Z")
        try f.event(id(2), .cardIssued, "2026-10-20T15:59:59Z", agency: b)
        // a3 (A): rejected in October; a later `approved` could not apply.
        try f.application(id(3), owner: a, submitted: "2026-10-15T00:00:00Z", status: .rejected, closed: "2026-10-16T00:00:00Z")
        try f.event(id(3), .submitted, "2026-10-15T00:00:00Z", agency: a)
        try f.event(id(3), .rejected, "2026-10-16T00:00:00Z")
        try f.event(id(3), .approved, "2026-10-17T00:00:00Z", outcome: "not_applied")
        // a4 (A): returned in August, still open: age 91 days at the end of October.
        try f.application(id(4), owner: a, submitted: "2026-08-01T00:00:00Z", status: .returned)
        try f.event(id(4), .submitted, "2026-08-01T00:00:00Z", agency: a)
        try f.event(id(4), .returned, "2026-08-05T00:00:00Z")
        // a5 (B): the last second of October, local.
        try f.application(id(5), owner: b, submitted: "2026-10-31T15:59:59Z", status: .submitted)
        try f.event(id(5), .submitted, "2026-10-31T15:59:59Z", agency: b)
        // a6 (B): exactly local midnight of Nov 1.
        try f.application(id(6), owner: b, submitted: "2026-10-31T16:00:00Z", status: .submitted)
        try f.event(id(6), .submitted, "2026-10-31T16:00:00Z", agency: b)
        // a7 (B) held as a duplicate of a8 (A); the conflict kept a8, so a7 was withdrawn at the resolution.
        try f.application(id(7), owner: b, submitted: "2026-10-05T00:00:00Z", status: .withdrawn, closed: "2026-10-07T00:00:00Z")
        try f.event(id(7), .submitted, "2026-10-05T00:00:00Z", agency: b)
        try f.event(id(7), .conflictOpened, "2026-10-05T01:00:00Z")
        try f.event(id(7), .conflictResolved, "2026-10-07T00:00:00Z")
        // a8 (A): approved, open at the end (age 27).
        try f.application(id(8), owner: a, submitted: "2026-10-04T00:00:00Z", status: .approved)
        try f.event(id(8), .submitted, "2026-10-04T00:00:00Z", agency: a)
        try f.event(id(8), .approved, "2026-10-08T00:00:00Z")
        try f.event(id(8), .cardIssued, "2026-10-25T00:00:00Z", agency: a, outcome: "pending")
        try f.conflict(.duplicateApplication, agencies: [a, b], apps: [id(7), id(8)], detected: "2026-10-05T01:00:00Z",
                       resolved: "2026-10-07T00:00:00Z", held: id(7), kept: id(8))
        // a9 (A): withdrawn by the agency.
        try f.application(id(9), owner: a, submitted: "2026-10-20T00:00:00Z", status: .withdrawn, closed: "2026-10-21T00:00:00Z")
        try f.event(id(9), .submitted, "2026-10-20T00:00:00Z", agency: a)
        try f.event(id(9), .withdrawn, "2026-10-21T00:00:00Z", agency: a)
        // a10 (A): submitted in June, issued by A at UTC midnight of Oct 1: lead 122 days.
        try f.application(id(10), owner: a, submitted: "2026-06-01T00:00:00Z", status: .issued, closed: "2026-10-01T00:00:00Z")
        try f.event(id(10), .submitted, "2026-06-01T00:00:00Z", agency: a)
        try f.event(id(10), .approved, "2026-06-03T00:00:00Z")
        try f.event(id(10), .cardProduced, "2026-06-10T00:00:00Z")
        try f.event(id(10), .cardDispatched, "2026-06-11T00:00:00Z")
        try f.event(id(10), .cardIssued, "2026-10-01T00:00:00Z", agency: a)
        // a12 (B): returned, amended, approved, produced, issued by B: lead 11 days.
        try f.application(id(12), owner: b, submitted: "2026-10-02T00:00:00Z", status: .issued, closed: "2026-10-13T00:00:00Z")
        try f.event(id(12), .submitted, "2026-10-02T00:00:00Z", agency: b)
        try f.event(id(12), .returned, "2026-10-03T00:00:00Z")
        try f.event(id(12), .amended, "2026-10-04T00:00:00Z", agency: b)
        try f.event(id(12), .approved, "2026-10-06T00:00:00Z")
        try f.event(id(12), .cardProduced, "2026-10-09T00:00:00Z")
        try f.event(id(12), .cardDispatched, "2026-10-10T00:00:00Z")
        try f.event(id(12), .cardIssued, "2026-10-13T00:00:00Z", agency: b)
        // a13 (A): exactly UTC midnight of Nov 1 (Oct 31 20:00 in New York, Nov 1 08:00 in Shanghai).
        try f.application(id(13), owner: a, submitted: "2026-11-01T00:00:00Z", status: .submitted)
        try f.event(id(13), .submitted, "2026-11-01T00:00:00Z", agency: a)
        // c2: detected in September (local), resolved in October, only A.
        try f.conflict(.invalidTransition, agencies: [a], apps: [id(3)], detected: "2026-09-30T15:00:00Z", resolved: "2026-10-02T00:00:00Z")
        // c3: detected at local midnight of Nov 1: not October.
        try f.conflict(.concurrentAmendment, agencies: [b, b], apps: [id(12)], detected: "2026-10-31T16:00:00Z")
    }
}
