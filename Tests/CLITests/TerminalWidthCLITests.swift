import CardCore
import Foundation
import TestSupport
import Testing

/// The text output of the wide commands fits 100 columns (what cardsync lays out for when stdout
/// is not a terminal, as here), on a generated city whose agencies include long Chinese names;
/// `--wide` still prints the single table.
@Suite(.serialized) struct TerminalWidthCLITests {
    /// A synced city: 12 agencies, 600 applications, the bureau's decisions pulled; two agencies
    /// renamed to 16-character names (32 columns) before anything is reported.
    struct City {
        let db: String
        let dir: TemporaryDirectory
        var queues: [String]
    }

    static let longNames = ["CS-FR-001": "长沙市芙蓉区社会保障卡服务网点站",
                            "CS-ONLINE": "长沙市社会保障卡网上服务大厅专窗"]

    static func city() throws -> City {
        let db = try TestDatabase.migratedDatabase()
        let dir = try TemporaryDirectory(prefix: "cardsync-width")
        let gen = try CLIRunner.run(["generate", dir.path + "/city", "--agencies", "12", "--applications", "600", "--end", "2026-11-01"])
        #expect(gen.status == 0, "\(gen.stderr)")
        let queues = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/city/queues")
            .sorted().map { dir.path + "/city/queues/" + $0 }
        #expect(queues.count == 12)
        let sync = try CLIRunner.run(["sync"] + queues + ["--database", db])
        #expect(sync.status == 0, "\(sync.stderr)")
        let imported = try CLIRunner.run(["bureau", "import", dir.path + "/city/bureau-decisions.jsonl", "--database", db])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(try CLIRunner.run(["sync"] + queues + ["--database", db]).status == 0)
        for (code, name) in longNames {
            let add = try CLIRunner.run(["agency", "add", code, "--name", name, "--database", db])
            #expect(add.status == 0, "\(add.stderr)")
        }
        return City(db: db, dir: dir, queues: queues)
    }

    static func widest(_ text: String) -> Int {
        text.components(separatedBy: "\n").map(TerminalText.displayWidth).max() ?? 0
    }

    /// Every line of `text` within `limit` columns; the offending lines in the message.
    static func expectFits(_ text: String, _ limit: Int, _ what: String) {
        let over = text.components(separatedBy: "\n").filter { TerminalText.displayWidth($0) > limit }
        #expect(over.isEmpty, "\(what): \(over.count) line(s) wider than \(limit): \(over.prefix(3).joined(separator: "\n"))")
    }

    /// The header lines of a report's tables: lines starting with the Code label.
    static func headerLines(_ text: String, _ label: String) -> [String] {
        text.components(separatedBy: "\n").filter { $0.hasPrefix(label + " ") }
    }

    @Test func everyWideCommandFits100ColumnsAndWideKeepsTheSingleTable() throws {
        let city = try Self.city()
        defer { city.dir.remove() }
        let db = ["--database", city.db]
        let reports: [(String, [String], [String])] = [
            ("monthly", ["report", "monthly", "--month", "2026-10"],
             ["Received", "Duplicates", "Approved", "Cards issued", "Backlog at end", "Lead time P90 (days)", "31+ d",
              "SLA breaches", "Conflicts resolved"]),
            ("backlog", ["report", "backlog", "--as-of", "2026-11-01"], ["Open", "Dispatched", "On hold", "31+ d", "Oldest (days)"]),
            ("throughput", ["report", "throughput", "--from", "2026-09-01", "--to", "2026-10-31"],
             ["From", "To", "Received", "Closed", "Backlog at end", "Lead time median (days)"]),
        ]
        for (name, args, labels) in reports {
            for lang in ["en", "zh"] {
                let fitted = try CLIRunner.run(args + ["--lang", lang] + db)
                #expect(fitted.status == 0, "\(name) \(lang): \(fitted.stderr)")
                Self.expectFits(fitted.stdout, 100, "report \(name) --lang \(lang)")
                let code = lang == "en" ? "Code" : "机构代码"
                // Split into several tables, each naming its rows by code and the long names
                // whole (32 columns leave room for every figure column beside them).
                #expect(Self.headerLines(fitted.stdout, code).count >= 2, "\(name) \(lang)\n\(fitted.stdout)")
                for long in Self.longNames.values { #expect(fitted.stdout.contains(long), "\(name) \(lang)") }

                let wide = try CLIRunner.run(args + ["--lang", lang, "--wide"] + db)
                #expect(wide.status == 0)
                let headers = Self.headerLines(wide.stdout, code)
                #expect(headers.count == 1, "\(name) \(lang) --wide\n\(wide.stdout)")
                if lang == "en" {
                    for label in labels {
                        #expect(headers.first?.contains(label) == true, "\(name) --wide lacks \(label)")
                        #expect(fitted.stdout.contains(label), "\(name) lacks \(label)")
                    }
                }
                #expect(Self.widest(wide.stdout) > 100, "\(name) \(lang) --wide is the one wide table")
                // The same figures: every agency's code appears on as many lines per table.
                #expect(fitted.stdout.components(separatedBy: "CS-YL-001").count
                        == (wide.stdout.components(separatedBy: "CS-YL-001").count - 1) * Self.headerLines(fitted.stdout, code).count + 1)
            }
        }

        // Not a terminal: 100 columns, whatever COLUMNS says (it describes the shell's window,
        // not the pipe the output goes to).
        let monthly = ["report", "monthly", "--month", "2026-10"] + db
        let narrowEnv = try CLIRunner.run(monthly, environment: ["COLUMNS": "80"])
        let plain = try CLIRunner.run(monthly)
        #expect(Self.widest(narrowEnv.stdout) > 80)
        #expect(narrowEnv.stdout.replacingOccurrences(of: #"Generated:.*\n"#, with: "", options: .regularExpression)
                == plain.stdout.replacingOccurrences(of: #"Generated:.*\n"#, with: "", options: .regularExpression))
        // Other formats are untouched by --wide.
        for format in ["csv", "md", "json"] {
            let a = try CLIRunner.run(monthly + ["--format", format]).stdout
            let b = try CLIRunner.run(monthly + ["--format", format, "--wide"]).stdout
            func stable(_ s: String) -> String {
                s.replacingOccurrences(of: #"(Generated|generated_at)[^\n]*"#, with: "", options: .regularExpression)
            }
            #expect(stable(a) == stable(b), "\(format)")
        }

        let conflicts = try CLIRunner.run(["conflicts", "list", "--status", "all"] + db)
        #expect(conflicts.status == 0, "\(conflicts.stderr)")
        #expect(conflicts.stdout.contains("duplicate_application"))
        Self.expectFits(conflicts.stdout, 100, "conflicts list")
        let conflictsWide = try CLIRunner.run(["conflicts", "list", "--status", "all", "--wide"] + db)
        #expect(conflictsWide.stdout.components(separatedBy: "\n").first?.hasSuffix("SUMMARY") == true, "\(conflictsWide.stdout)")
        // Wide: one line per conflict after the header and the rule.
        let ids = conflictsWide.stdout.components(separatedBy: "\n").dropFirst(2).prefix { !$0.isEmpty }
        #expect(ids.allSatisfy { $0.range(of: #"^ *[0-9]+  "#, options: .regularExpression) != nil }, "\(conflictsWide.stdout)")

        let reconcile = try CLIRunner.run(["reconcile"] + city.queues + ["--repair"] + db)
        #expect(reconcile.status == 0, "\(reconcile.stderr)")
        Self.expectFits(reconcile.stdout, 100, "reconcile")
        let reconcileWide = try CLIRunner.run(["reconcile"] + city.queues + ["--wide"] + db)
        #expect(reconcileWide.stdout.hasPrefix("agency "))
        #expect(reconcileWide.stdout.components(separatedBy: "\n").first?.hasSuffix("seconds") == true)
        #expect(Self.widest(reconcileWide.stdout) > 100)

        let roles = try CLIRunner.run(["db", "roles"] + db)
        Self.expectFits(roles.stdout, 100, "db roles")
        #expect(roles.stdout.contains("cardsync_merge") && roles.stdout.contains("cardsync_agency"), "\(roles.stdout)")
        let rolesWide = try CLIRunner.run(["db", "roles", "--wide"] + db)
        #expect(rolesWide.stdout.contains("all cardsync_merge may, plus agencies and their credentials"), "\(rolesWide.stdout)")
    }
}
