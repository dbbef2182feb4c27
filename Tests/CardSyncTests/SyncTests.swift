import CardCore
import EventFixtures
import Foundation
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

/// Agency queues and sync against a real central database: exactly-once push, pull,
/// quarantine and out-of-order arrival, in the words of ../shared/spec.
@Suite("Agency sync")
struct SyncTests {
    // MARK: Exactly once

    @Test("syncing again changes nothing: the second sync pushes 0, the ledger and the inbox stay as they are")
    func idempotentResync() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let outbox = OutboxScript(queue)
        var apps: [UUID] = []
        for _ in 0..<10 { apps.append(try outbox.submit()) }
        for app in apps.prefix(5) { try outbox.verify(app) }
        try outbox.withdraw(apps[9])
        try outbox.appendRaw(Array(#"{"seq": 99, "broken"#.utf8))   // one quarantined line
        outbox.skipSeq(to: 99)
        try outbox.amend(apps[0], baseVersion: 2, phone: "13900001111")
        let valid = 17

        let first = try world.sync(queue, batchSize: 4)
        #expect(first.pushed == valid)
        #expect(first.alreadyPresent == 0)
        #expect(first.quarantined == 1)
        let ledgerAfterPush = try world.ledgerCount
        #expect(ledgerAfterPush == valid)

        let approvals = try BureauRecorder(connection: try world.db, logger: .test).record(.approved, applications: Array(apps[1...3])) { _ in [:] }
        #expect(approvals.map(\.outcome) == ["applied", "applied", "applied"])
        let second = try world.sync(queue)
        #expect(second.pushed == 0)
        #expect(second.alreadyPresent == 0)
        #expect(second.quarantined == 0)
        #expect(second.pulled == 3)
        let ledger = try world.ledgerCount
        #expect(ledger == valid + 3)
        let inbox = QueueFiles.bytes(queue.inboxFile)
        let quarantine = QueueFiles.bytes(queue.quarantineFile)
        let central = try world.snapshot()

        let third = try world.sync(queue)
        #expect(third.pushed == 0)
        #expect(third.pulled == 0)
        #expect(third.quarantined == 0)
        #expect(try world.ledgerCount == ledger)
        #expect(QueueFiles.bytes(queue.inboxFile) == inbox)
        #expect(QueueFiles.bytes(queue.quarantineFile) == quarantine)
        #expect(try world.snapshot() == central)

        // A lost checkpoint: everything is read and offered again, and recognised.
        try FileManager.default.removeItem(at: queue.stateFile)
        let afterLoss = try world.sync(queue, batchSize: 3)
        #expect(afterLoss.pushed == 0)
        #expect(afterLoss.alreadyPresent == valid)
        #expect(afterLoss.conflictsOpened == 0)
        #expect(try world.ledgerCount == ledger)
        #expect(try world.snapshot() == central)
        #expect(QueueFiles.bytes(queue.inboxFile) == inbox, "the inbox is not duplicated after a lost checkpoint")
        #expect(QueueFiles.bytes(queue.quarantineFile) == quarantine, "the quarantine is not duplicated after a lost checkpoint")
        QueueFiles.expectNoDuplicates(try QueueFiles.inbox(queue))

        let settled = try world.sync(queue)
        #expect(settled.pushed == 0 && settled.alreadyPresent == 0 && settled.pulled == 0)
        try world.expectVerifyClean()
    }

    @Test("the same event arriving again with the same content is counted as already present and changes nothing")
    func sameEventAgainIsAlreadyPresent() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let outbox = OutboxScript(queue)
        let apps = try (0..<4).map { _ in try outbox.submit() }
        try world.sync(queue)
        let decisions = world.path("decisions.jsonl")
        try SyncFixture.writeLines(apps.map { SyncFixture.decision(.approved, app: $0, at: SyncFixture.at(minutes: 100)) }
                                   + [SyncFixture.decision(.cardProduced, app: apps[0], at: SyncFixture.at(minutes: 101),
                                                           data: ["card_number": "A10000001"])],
                                   to: decisions)
        let firstImport = try world.importBureau(decisions)
        #expect(firstImport.merged.accepted == 5)
        #expect(firstImport.merged.alreadyPresent == 0)
        let central = try world.snapshot()

        let again = try world.importBureau(decisions)
        #expect(again.merged.accepted == 0)
        #expect(again.merged.alreadyPresent == 5)
        #expect(again.merged.conflictsOpened == 0)
        #expect(try world.snapshot() == central)

        let pulled = try world.sync(queue)
        #expect(pulled.pulled == 5)
        let inbox = try QueueFiles.inbox(queue)
        #expect(inbox.count == 5)
        QueueFiles.expectNoDuplicates(inbox)
        try world.expectVerifyClean()
    }

    @Test("an event sent again after a lost checkpoint is already present, whatever extra fields and numbers it carries")
    func resentEventWithExtraFieldsIsAlreadyPresent() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let outbox = OutboxScript(queue)
        let app = try outbox.submit()
        let extra = #"{"seq": 2, "event_id": "\#(UUID().lowercased)", "application_id": "\#(app.lowercased)", "type": "documents_verified", "occurred_at": "\#(SyncFixture.at(minutes: 30).rfc3339)", "data": {"documents": ["photo"], "score": 1e3, "ratio": 0.10, "big": 12345678901234567890, "neg": -0.0, "note": "\u00e9\ud83d\ude00", "vendor": {"x": [1, 2.5, null, true]}}, "counter": "A-3"}"#
        try outbox.appendRaw(Array(extra.utf8))
        #expect(try world.sync(queue).pushed == 2)

        try FileManager.default.removeItem(at: queue.stateFile)
        let again = try world.sync(queue)
        #expect(again.pushed == 0)
        #expect(again.alreadyPresent == 2)
        #expect(again.conflictsOpened == 0, "the same event is not an event_id_reuse conflict")
        #expect(try world.count("SELECT count(*) FROM cardsync.conflicts") == 0)
        try world.expectVerifyClean()
    }

    // MARK: Quarantine

    @Test("a line that fails any rule is appended to quarantine.jsonl with its code; the lines after it still sync")
    func everyQuarantineCodeThroughSync() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let outbox = OutboxScript(queue)
        let app = UUID()
        var expected: [(line: Int, code: String)] = []
        var seq: Int64 = 100
        func faulty(_ code: QuarantineCode, _ mutate: (JSONValue) -> JSONValue, type: String = "submitted") throws {
            seq += 1
            let data: JSONValue = type == "submitted" ? SyncFixture.submittedData(child: Int(seq))
                : ["base_version": 1, "changes": ["guardian.phone": "13900001111"]]
            let base = SyncFixture.event(type, app: app, at: SyncFixture.at(minutes: Int(seq)), data: data)
                .setting("seq", to: .int(seq))
            try outbox.appendRaw(JSONWriter.bytes(mutate(base)))
            expected.append((outbox.lines.count, code.rawValue))
        }
        let child = SyncFixture.childID(7)
        let adult = IdentityNumber.make(regionCode: "430102", birthDate: CivilDate(year: 2000, month: 1, day: 1)!, sequence: 3)
        let minor = IdentityNumber.make(regionCode: "430102", birthDate: CivilDate(year: 2015, month: 6, day: 1)!, sequence: 5)
        let wrongCheck = String(child.text.dropLast()) + (child.text.last == "1" ? "2" : "1")

        try outbox.appendRaw(Array(#"{"seq": 100, "event_id": "#.utf8))
        expected.append((outbox.lines.count, "malformed_json"))
        try outbox.appendRaw(Array(#"{"seq": 100, "note": ""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8))
        expected.append((outbox.lines.count, "malformed_json"))
        try faulty(.lineTooLong) { $0.setting("note", to: .string(String(repeating: "x", count: 1_048_577))) }
        try faulty(.missingField) { $0.setting("occurred_at", to: nil) }
        try faulty(.wrongType) { $0.setting("data", to: "not an object") }
        try faulty(.seqNotIncreasing) { $0.setting("seq", to: 3) }
        try faulty(.badUUID) { $0.setting("event_id", to: "not-a-uuid") }
        try faulty(.unknownType) { $0.setting("type", to: "approved") }
        try faulty(.badTimestamp) { $0.setting("occurred_at", to: "2026-10-03 09:15:27") }
        try faulty(.occurredInFuture) {
            $0.setting("occurred_at", to: .string(Timestamp(microseconds: Timestamp.now.microseconds + 86_400_000_000,
                                                            offsetSeconds: SyncFixture.shanghai).rfc3339))
        }
        try faulty(.invalidIDNumber) { $0.setting("data.child.id_number", to: .string(wrongCheck)) }
        try faulty(.idBirthMismatch) { $0.setting("data.child.birth_date", to: "2019-03-16") }
        try faulty(.notAMinor) {
            $0.setting("data.child.id_number", to: .string(adult.text)).setting("data.child.birth_date", to: "2000-01-01")
        }
        try faulty(.guardianNotAdult) { $0.setting("data.guardian.id_number", to: .string(minor.text)) }
        try faulty(.missingDocument) { $0.setting("data.documents", to: ["birth_certificate", "household_register"]) }
        try faulty(.badPhone) { $0.setting("data.guardian.phone", to: "12345") }
        try faulty(.immutableField, { $0.setting(["data", "changes", "child.id_number"], to: .string(child.text)) }, type: "amended")
        try faulty(.badEnum) { $0.setting("data.channel", to: "fax") }
        outbox.skipSeq(to: seq)
        #expect(Set(expected.map(\.code)) == Set(QuarantineCode.allCases.map(\.rawValue)), "one line per code")

        let valid = try outbox.submit()
        try outbox.verify(valid)
        // A final line without a newline: an append in progress.
        let tornApp = UUID()
        let torn = JSONWriter.bytes(SyncFixture.event("submitted", app: tornApp, at: SyncFixture.at(minutes: 500),
                                                      data: SyncFixture.submittedData(child: 900))
            .setting("seq", to: .int(outbox.lastSeq + 1)))
        try outbox.appendRaw(torn, newline: false)

        let result = try world.sync(queue, batchSize: 5)
        #expect(result.quarantined == expected.count)
        #expect(result.pushed == 2)
        let entries = try QueueFiles.quarantine(queue)
        #expect(entries.map(\.lineNumber) == expected.map(\.line))
        #expect(entries.map(\.error) == expected.map(\.code))
        for entry in entries {
            #expect(entry.raw == outbox.lines[entry.lineNumber - 1], "quarantine keeps line \(entry.lineNumber)'s original bytes")
        }
        #expect(try world.count("SELECT count(*) FROM cardsync.ledger WHERE application_id = $1", [.uuid(valid)]) == 2)
        #expect(try world.count("SELECT count(*) FROM cardsync.ledger WHERE application_id = $1", [.uuid(tornApp)]) == 0,
                "a torn final line is not synced")
        #expect(try world.ledgerCount == 2)

        // Still torn: nothing happens. Completed: it syncs, and nothing is quarantined again.
        let again = try world.sync(queue)
        #expect(again.pushed == 0 && again.quarantined == 0)
        try outbox.appendRaw([], newline: true)
        let completed = try world.sync(queue)
        #expect(completed.pushed == 1)
        #expect(completed.quarantined == 0)
        #expect(try world.count("SELECT count(*) FROM cardsync.applications WHERE application_id = $1", [.uuid(tornApp)]) == 1)
        #expect(try QueueFiles.quarantine(queue).count == expected.count)
        try world.expectVerifyClean()
    }

    // MARK: Out-of-order arrival

    @Test("a card_issued whose card_produced is still on its way is held as pending and applied when it arrives, no conflict")
    func outOfOrderCardIssued() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let outbox = OutboxScript(queue)
        let app = try outbox.submit()
        try world.sync(queue)
        let bureau = BureauRecorder(connection: try world.db, logger: .test)
        #expect(try bureau.record(.approved, applications: [app], data: { _ in [:] }).first?.outcome == "applied")

        // The counter hands the card over before the bureau's production record reaches the centre.
        try outbox.issue(app, card: "A12345678", at: SyncFixture.at(minutes: 200))
        let early = try world.sync(queue)
        #expect(early.pushed == 1)
        #expect(early.pending == 1)
        #expect(early.conflictsOpened == 0)
        #expect(try world.texts("SELECT outcome FROM cardsync.ledger WHERE type = 'card_issued'") == ["pending"])
        #expect(try world.texts("SELECT status FROM cardsync.applications") == ["approved"])

        let produced = world.path("produced.jsonl")
        try SyncFixture.writeLines([SyncFixture.decision(.cardProduced, app: app, at: SyncFixture.at(minutes: 150),
                                                         data: ["card_number": "A12345678"])], to: produced)
        let imported = try world.importBureau(produced)
        #expect(imported.merged.accepted == 1)
        #expect(imported.merged.conflictsOpened == 0)
        #expect(try world.texts("SELECT outcome FROM cardsync.ledger WHERE type = 'card_issued'") == ["applied"])
        #expect(try world.texts("SELECT status || ' ' || issued_by || ' ' || card_number FROM cardsync.applications")
            == ["issued CS-FR-001 A12345678"])
        #expect(try world.count("SELECT count(*) FROM cardsync.conflicts") == 0)

        let pulled = try world.sync(queue)
        #expect(pulled.pushed == 0)
        #expect(try QueueFiles.inbox(queue).map(\.type) == [.approved, .cardProduced])
        try world.expectVerifyClean()
    }

    // MARK: The command line

    @Test("sync --json prints one JSON document with the agencies and totals of cli.md on stdout and nothing else")
    func syncJSONShape() throws {
        let world = try SyncWorld()
        let fr = try world.queue()
        let online = try world.queue(Agency(code: "CS-ONLINE", name: "长沙市社保卡网上服务", channel: .online))
        let frOutbox = OutboxScript(fr)
        let onlineOutbox = OutboxScript(online, firstChild: 100)
        for _ in 0..<3 { try frOutbox.submit() }
        try frOutbox.appendRaw(Array("not json".utf8))
        frOutbox.skipSeq(to: frOutbox.lastSeq)
        try frOutbox.submit(child: 100)            // a duplicate of the online application below
        try onlineOutbox.submit()
        try onlineOutbox.submit()

        let run = try CardsyncCLI.run(["sync", fr.path, online.path, "--database", world.uri, "--json", "--jobs", "2"],
                                      scratch: world.directory.url)
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let document = try JSONParser.parse(run.stdout)
        #expect(document.keys == ["agencies", "totals"])
        let rowKeys = ["agency_code", "already_present", "conflicts_opened", "pending", "pulled", "pushed", "quarantined", "seconds"]
        let rows = document["agencies"]?.arrayValue ?? []
        #expect(rows.count == 2)
        for row in rows { #expect(row.keys == rowKeys) }
        #expect(rows.map { $0["agency_code"]?.stringValue } == ["CS-FR-001", "CS-ONLINE"])
        #expect(rows.map { $0["pushed"]?.intValue } == [4, 2])
        #expect(rows.map { $0["quarantined"]?.intValue } == [1, 0])
        for row in rows {
            if case .double? = row["seconds"] {} else if case .int? = row["seconds"] {} else {
                Issue.record("seconds is not a number: \(String(describing: row["seconds"]))")
            }
        }
        let totals = document["totals"] ?? .null
        for key in rowKeys where key != "agency_code" && key != "seconds" {
            #expect(totals[key]?.intValue == rows.compactMap { $0[key]?.intValue }.reduce(0, +), "totals.\(key)")
        }
        #expect(totals["conflicts_opened"]?.intValue == 1)
        #expect(Set(totals.keys).isSuperset(of: rowKeys.filter { $0 != "agency_code" }))
        // totals.seconds is the whole run's elapsed time, so it covers every agency's own sync.
        func number(_ value: JSONValue?) -> Double? {
            switch value {
            case .double(let d)?: return d
            case .int(let i)?: return Double(i)
            default: return nil
            }
        }
        let rowSeconds = rows.compactMap { number($0["seconds"]) }
        #expect(rowSeconds.count == 2)
        #expect((number(totals["seconds"]) ?? -1) >= rowSeconds.max() ?? .infinity)

        // A second run: the same shape, nothing pushed; --strict is about this run's results.
        let again = try CardsyncCLI.run(["sync", fr.path, online.path, "--database", world.uri, "--json", "--strict"],
                                        scratch: world.directory.url)
        #expect(again.status == 0, "stderr: \(again.stderr)")
        let second = try JSONParser.parse(again.stdout)
        #expect(second["totals"]?["pushed"]?.intValue == 0)
        #expect(second["totals"]?["already_present"]?.intValue == 0)

        // --strict: quarantined lines make the exit status 3.
        try frOutbox.appendRaw(Array("[1]".utf8))
        let strict = try CardsyncCLI.run(["sync", fr.path, "--database", world.uri, "--json", "--strict"],
                                         scratch: world.directory.url)
        #expect(strict.status == 3)
        #expect((try JSONParser.parse(strict.stdout))["totals"]?["quarantined"]?.intValue == 1)
        try world.expectVerifyClean()
    }
}
