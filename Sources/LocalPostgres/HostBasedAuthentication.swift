import Foundation

/// The cluster's `pg_hba.conf`, rewritten from the listen settings at every start.
///
/// What TCP clients may do depends on how the server listens, and a file left over from an
/// earlier start must never keep admitting clear-text TCP once TLS is asked for, so the rules
/// are derived, not edited:
/// - the Unix socket: `trust`, as `initdb --auth-local=trust` set it up (only users who can
///   enter the private socket directory get there);
/// - TCP without TLS: `host … scram-sha-256`;
/// - TCP with TLS: `hostssl … scram-sha-256` and nothing else for TCP, so a client that does not
///   use TLS finds no matching rule and is refused.
///
/// Client addresses: a loopback listener can only be reached from this machine, so only the
/// loopback addresses (and the listen address itself) are admitted. Any other listen address is
/// there for clients on the network, whose addresses cardsync cannot know: every address is
/// admitted, with a password (and TLS, with `--tls`) required.
enum HostBasedAuthentication {
    static func contents(for listener: TCPListener?) -> String {
        var lines = [
            "# Written by cardsync at every start of the embedded cluster, from listen.json in the",
            "# cluster directory (cardsync db start --listen HOST:PORT [--tls]). Edits are lost.",
            "# TYPE     DATABASE     USER  ADDRESS          METHOD",
            "local      all          all                    trust",
            "local      replication  all                    trust",
        ]
        if let listener {
            let type = listener.tls ? "hostssl" : "host"
            for database in ["all", "replication"] {
                for address in clientAddresses(for: listener) {
                    lines.append("\(pad(type, 10))\(pad(database, 13))all   \(pad(address, 17))scram-sha-256")
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Replaces `DATA/pg_hba.conf` (mode 600 and owned by the server account, like initdb's).
    static func write(for listener: TCPListener?, dataDirectory: URL, account: ServerAccount) throws {
        try ServerFile.replace(dataDirectory.appendingPathComponent("pg_hba.conf"),
                               with: contents(for: listener), mode: 0o600, account: account)
    }

    static func clientAddresses(for listener: TCPListener) -> [String] {
        guard listener.isLoopback else { return ["all"] }
        var addresses: [String] = []
        switch IPAddress(listener.host) {
        case .v4?: addresses.append("\(listener.host)/32")
        case .v6?: addresses.append("\(listener.host)/128")
        case nil: break
        }
        // Connections to any loopback address come from 127.0.0.1 or ::1.
        for address in ["127.0.0.1/32", "::1/128"] where !addresses.contains(address) {
            addresses.append(address)
        }
        return addresses
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }
}
