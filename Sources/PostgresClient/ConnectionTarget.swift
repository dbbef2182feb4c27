import Foundation
import CLibPQ

/// Describes where a connection goes without ever including the password.
///
/// Error messages must say which server failed, but the conninfo string may contain a password,
/// so it is never echoed; instead the description is rebuilt from what libpq resolved (after
/// applying PG* environment variables and defaults): host or socket directory, port, database,
/// user.
enum ConnectionTarget {
    /// `host /tmp/x port 5432 db cardsync user postgres`.
    static func describe(_ connection: OpaquePointer) -> String {
        func value(_ get: (OpaquePointer) -> UnsafeMutablePointer<CChar>?) -> String? {
            guard let pointer = get(connection) else { return nil }
            let text = String(cString: pointer)
            return text.isEmpty ? nil : text
        }
        var parts: [String] = []
        if let host = value({ PQhost($0) }) { parts.append("host \(host)") }
        if let port = value({ PQport($0) }) { parts.append("port \(port)") }
        if let db = value({ PQdb($0) }) { parts.append("db \(db)") }
        if let user = value({ PQuser($0) }) { parts.append("user \(user)") }
        return parts.isEmpty ? "(unresolved connection target)" : parts.joined(separator: " ")
    }

    /// The password given in the conninfo, if it parses, so it can be scrubbed from any message;
    /// `parses` is false when libpq rejects the string (its parse errors quote fragments of it).
    static func inspect(_ conninfo: String) -> (parses: Bool, password: String?) {
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(conninfo, &errorMessage) else {
            if let errorMessage { PQfreemem(errorMessage) }
            return (false, nil)
        }
        defer { PQconninfoFree(options) }
        var password: String?
        var option = options
        while let keyword = option.pointee.keyword {
            if String(cString: keyword) == "password", let value = option.pointee.val {
                password = String(cString: value)
            }
            option += 1
        }
        return (true, password)
    }

    /// libpq's message, made safe to show: quoted fragments masked when the conninfo did not
    /// parse (they can be pieces of a password), and any occurrence of the password replaced.
    static func redact(_ message: String, conninfo: String) -> String {
        let (parses, password) = inspect(conninfo)
        var text = parses ? message : PostgresError.maskingQuotedFragments(message)
        if let password, !password.isEmpty {
            text = text.replacingAll(password, with: "***")
        }
        return text
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = Substring(self)
        while let range = rest.range(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
