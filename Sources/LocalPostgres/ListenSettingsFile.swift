import Foundation

/// The cluster's chosen way of listening, kept in `DIR/listen.json`.
///
/// `cardsync db start --listen … --tls` is given once, but every other command starts the
/// embedded cluster on demand with default options; reading the choice back here at each start
/// is what makes those starts listen the same way instead of silently dropping TCP or TLS.
/// Absent file: nothing was chosen, `LocalCluster.Options` decide.
struct ListenSettingsFile {
    /// What the file holds: `{"tcp": {"host": …, "port": …, "tls": …}}`, or `{}` for the Unix
    /// socket only.
    struct Contents: Codable, Hashable {
        var tcp: TCPListener?
    }

    let url: URL

    init(clusterDirectory: URL) {
        url = clusterDirectory.appendingPathComponent("listen.json")
    }

    func load() throws -> Contents? {
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        do {
            return try JSONDecoder().decode(Contents.self, from: data)
        } catch {
            throw LocalClusterError(
                "\(url.path) does not hold listen settings (\(error)); fix it or delete it and run cardsync db start with the settings you want",
                cause: error)
        }
    }

    func save(_ contents: Contents, account: ServerAccount) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let text = String(decoding: try encoder.encode(contents), as: UTF8.self) + "\n"
        try ServerFile.replace(url, with: text, mode: 0o600, account: account)
    }
}
