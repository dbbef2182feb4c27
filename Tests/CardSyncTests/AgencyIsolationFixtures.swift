import CardCore
import CardDatabase
import Foundation
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

/// A central database with two registered agencies, each with its own login role, and a login
/// role of the bureau's: the roles a real deployment runs with (docs/security.md).
///
/// Roles belong to the whole test cluster, so every name here is unique to the test.
final class IsolationWorld: @unchecked Sendable {
    // @unchecked: used by one test at a time.
    let world: SyncWorld
    let agencyA: Agency
    let agencyB: Agency
    let roleA: String
    let roleB: String
    let bureauRole: String

    init() throws {
        world = try SyncWorld()
        let tag = String(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(8))
        agencyA = Agency(code: "A\(tag)", name: "芙蓉区网点 \(tag)", district: "芙蓉区", channel: .counter)
        agencyB = Agency(code: "B\(tag)", name: "天心区网点 \(tag)", district: "天心区", channel: .counter)
        try world.register(agencyA)
        try world.register(agencyB)
        let registry = AgencyRegistry(connection: try world.db)
        roleA = try registry.rotateCredentials(agencyA.code).role
        roleB = try registry.rotateCredentials(agencyB.code).role
        bureauRole = "t_bureau_\(tag.lowercased())"
        try world.db.executeScript("CREATE ROLE \(try world.db.escapeIdentifier(bureauRole)) LOGIN IN ROLE cardsync_bureau")
    }

    /// The world's URI, logging in as `role` (the test cluster trusts its Unix socket, so the
    /// role's privileges, not its password, are what is tested here; TLS tests check passwords).
    func uri(as role: String) -> String {
        precondition(world.uri.contains("&user=postgres"))
        return world.uri.replacingOccurrences(of: "&user=postgres", with: "&user=\(role)")
    }

    func connect(as role: String) throws -> Connection { try Connection(conninfo: uri(as: role)) }

    /// One sync of `queue` connected as `role`, not waiting for the merge unless asked.
    @discardableResult
    func sync(_ queue: QueueDirectory, as role: String, mergeWait: Duration = .zero) throws -> AgencySyncResult {
        var options = SyncOptions()
        options.mergeWait = mergeWait
        return try AgencySync(queue: queue, connection: try connect(as: role), options: options, logger: .test).run()
    }

    /// One run of the bureau's merge as the bureau's role, on two connections like the command.
    @discardableResult
    func merge() throws -> StagedBatchMerger.Totals {
        try StagedBatchMerger(connection: try connect(as: bureauRole), projection: try connect(as: bureauRole),
                              logger: .init(label: "test.merge")).mergeAll()
    }

    /// Runs `sql` with psql as `role`; returns psql's exit status and what it wrote to stderr.
    /// The agencies' codes are psql variables, written `:'agency_a'` and `:'agency_b'` in `sql`:
    /// psql quotes them (it does so only for what it reads, so the statement goes on stdin).
    func psql(_ sql: String, as role: String) throws -> (status: Int32, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        process.arguments = ["--no-psqlrc", "-X", "-q", "-v", "ON_ERROR_STOP=1",
                             "-v", "agency_a=\(agencyA.code)", "-v", "agency_b=\(agencyB.code)", "-d", uri(as: role)]
        let err = Pipe()
        let input = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = input
        try process.run()
        input.fileHandleForWriting.write(Data((sql + "\n").utf8))
        try input.fileHandleForWriting.close()
        let data = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
