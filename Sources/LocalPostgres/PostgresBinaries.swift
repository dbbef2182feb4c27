import Foundation

/// Where the PostgreSQL server programs (`initdb`, `pg_ctl`) are installed.
public struct PostgresBinaries: Sendable, Hashable {
    /// The directory holding `initdb` and `pg_ctl`.
    public var directory: URL

    public init(directory: URL) { self.directory = directory }

    public var initdb: URL { directory.appendingPathComponent("initdb") }
    public var pgCtl: URL { directory.appendingPathComponent("pg_ctl") }

    /// Finds the binaries: the highest version under `/usr/lib/postgresql/<version>/bin`
    /// (Debian/Ubuntu keep them off PATH there), otherwise `initdb` on `PATH`.
    public static func locate(
        versionsRoot: URL = URL(fileURLWithPath: "/usr/lib/postgresql"),
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> PostgresBinaries {
        let fileManager = FileManager.default
        let versions = (try? fileManager.contentsOfDirectory(atPath: versionsRoot.path)) ?? []
        let candidates = versions
            .compactMap { name -> (Double, URL)? in
                guard let number = Double(name) else { return nil }
                let bin = versionsRoot.appendingPathComponent(name).appendingPathComponent("bin")
                return fileManager.isExecutableFile(atPath: bin.appendingPathComponent("initdb").path) ? (number, bin) : nil
            }
            .sorted { $0.0 > $1.0 }
        if let best = candidates.first { return PostgresBinaries(directory: best.1) }
        for entry in (environment["PATH"] ?? "").split(separator: ":") {
            let directory = URL(fileURLWithPath: String(entry))
            if fileManager.isExecutableFile(atPath: directory.appendingPathComponent("initdb").path),
               fileManager.isExecutableFile(atPath: directory.appendingPathComponent("pg_ctl").path) {
                return PostgresBinaries(directory: directory)
            }
        }
        throw LocalClusterError(
            "PostgreSQL server programs (initdb, pg_ctl) not found under \(versionsRoot.path)/*/bin or on PATH; install the postgresql package: apt-get install postgresql")
    }
}
