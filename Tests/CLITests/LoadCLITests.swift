import Foundation
import TestSupport
import Testing

/// Two hundred agencies at once, as at a real site (`cardsync bench load`): agencies with their
/// own roles syncing as processes of their own, one bureau-side `sync --jobs 16`, a `bureau
/// import` and a `merge --follow` all at the same time. The command checks for itself that nothing
/// was lost or doubled (ledger, quarantines, staged batches, inboxes, `db verify`); this test runs
/// it small enough for CI, on an embedded cluster of its own so that no other test's roles
/// (agency roles are server-wide) change under it.
@Suite struct LoadCLITests {
    @Test func twoHundredAgenciesSyncAtOnceWhileTheBureauImportsAndMerges() throws {
        let home = try TemporaryDirectory(prefix: "cs-load")
        let environment = ["CARDSYNC_HOME": home.path + "/home"]
        defer {
            _ = try? CLIRunner.run(["db", "stop"], environment: environment)
            home.remove()
        }
        let run = try CLIRunner.run(["bench", "load", "--agencies", "200", "--applications", "1500", "--processes", "8",
                                     "--bureau-agencies", "40", "--jobs", "16", "--json"], environment: environment)
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr.suffix(2000))")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect(json["agencies"] as? Int == 200)
        #expect((json["events"] as? Int ?? 0) > 1500)
        #expect((json["bureau_decisions"] as? Int ?? 0) > 0)
        #expect((json["problems"] as? [String])?.isEmpty == true, "\(json["problems"] ?? "")")
    }
}
