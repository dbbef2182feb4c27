import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the cluster accepts TCP connections besides its Unix socket, and whether they must use
/// TLS (`cardsync db start --listen HOST:PORT [--tls]`).
///
/// TCP clients always log in with a password (`scram-sha-256`); with `tls`, pg_hba.conf admits
/// TCP only over TLS, so neither passwords nor data ever cross the network in clear text.
public struct TCPListener: Codable, Sendable, Hashable, CustomStringConvertible {
    /// An IP address, a host name, or a wildcard (`*`, `0.0.0.0`, `::`) for every address:
    /// what the server puts in `listen_addresses`.
    public var host: String
    public var port: Int
    public var tls: Bool

    public init(host: String, port: Int, tls: Bool) throws {
        guard !host.isEmpty, host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-:*".contains($0)) }),
              !host.hasPrefix("-"), host == "*" || !host.contains("*")
        else {
            // The host goes into listen_addresses, pg_hba.conf and certificate requests, so only
            // the characters of addresses and DNS names are let through.
            throw LocalClusterError("not a host name or IP address to listen on: \(host.debugDescription)")
        }
        guard (1...65535).contains(port) else {
            throw LocalClusterError("not a TCP port: \(port) (1 to 65535)")
        }
        self.host = host
        self.port = port
        self.tls = tls
    }

    /// Parses `HOST:PORT`, or `[IPv6]:PORT`.
    public init(parsing text: String, tls: Bool) throws {
        let host: Substring, port: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]"),
           text[text.index(after: close)...].hasPrefix(":") {
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else if let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") {
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        } else {
            throw LocalClusterError("expected HOST:PORT (an IPv6 address in brackets: [::1]:5433), got \(text.debugDescription)")
        }
        guard let number = Int(port) else {
            throw LocalClusterError("expected HOST:PORT with a numeric port, got \(text.debugDescription)")
        }
        try self.init(host: String(host), port: number, tls: tls)
    }

    private enum CodingKeys: String, CodingKey { case host, port, tls }

    /// Decodes through the checking initializer: a hand-edited settings file gets the same
    /// scrutiny as the command line.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(host: try container.decode(String.self, forKey: .host),
                      port: try container.decode(Int.self, forKey: .port),
                      tls: try container.decode(Bool.self, forKey: .tls))
    }

    public var description: String { "\(host.contains(":") ? "[\(host)]" : host):\(port)" }

    /// Listening on every address of the machine.
    public var isWildcard: Bool { ["*", "0.0.0.0", "::"].contains(host) }

    /// Only processes on this machine can reach the listener.
    public var isLoopback: Bool {
        if host.lowercased() == "localhost" { return true }
        switch IPAddress(host) {
        case .v4(let bytes)?: return bytes[0] == 127
        case .v6(let bytes)?: return bytes == IPAddress.v6Loopback
        case nil: return false
        }
    }

    /// The name a client on this machine or the network uses to reach the listener, and which
    /// the server certificate must name: the host itself, or for a wildcard this machine's name.
    public var clientHost: String { isWildcard ? Self.machineName() ?? "localhost" : host }

    /// The names the server certificate covers: `clientHost`, plus `localhost` and the loopback
    /// addresses, so that a client on the server's own machine can verify it too.
    var certificateNames: [String] {
        var names = [clientHost, "localhost", "127.0.0.1"]
        if host.contains(":") || isWildcard { names.append("::1") }
        var seen = Set<String>()
        return names.filter { seen.insert($0.lowercased()).inserted }
    }

    static func machineName() -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return nil }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let usable = !name.isEmpty && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || ".-".contains($0)) }
        return usable ? name : nil
    }
}

/// An IPv4 or IPv6 address in binary, so that `127.0.0.1` in a certificate and `::1` written
/// as `0:0:0:0:0:0:0:1` by openssl compare equal to what the user typed.
enum IPAddress: Hashable {
    case v4([UInt8])
    case v6([UInt8])

    static let v6Loopback: [UInt8] = Array(repeating: 0, count: 15) + [1]

    init?(_ text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self = .v4(withUnsafeBytes(of: &v4) { Array($0) })
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            self = .v6(withUnsafeBytes(of: &v6) { Array($0) })
            return
        }
        return nil
    }
}
