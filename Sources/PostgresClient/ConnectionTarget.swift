import Foundation
import CLibPQ

/// Describes where a connection goes without ever including the password.
///
/// Error messages must say which server failed, but the conninfo string may contain a password,
/// so it is never echoed; instead the description is rebuilt from what libpq resolved (after
/// applying PG* environment variables and defaults): host or socket directory, port, database,
/// user.
public enum ConnectionTarget {
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

    /// Shown instead of a conninfo that libpq cannot parse: what it says cannot be known, so any
    /// piece of it might be a password.
    public static let unparsableConninfoPlaceholder = "(a connection string libpq cannot parse; not shown, it may hold a password)"

    /// A conninfo (URI or key=value) as one line fit for messages: the options libpq's own
    /// parser finds in it, in key=value form, with every secret replaced by `***`.
    ///
    /// Rebuilt from `PQconninfoParse` rather than edited in place, so no spelling libpq accepts
    /// (spaces around `=`, quoting and escapes, URI userinfo, `?password=`, percent-encoding)
    /// can carry a password past the redaction. Only what the string itself sets is shown:
    /// PQconninfoParse adds no defaults and reads no environment.
    public static func redactedConninfo(_ conninfo: String) -> String {
        guard let options = parsedOptions(conninfo) else { return unparsableConninfoPlaceholder }
        // Where the server is and who connects first, the rest in libpq's own order.
        let leading = ["host", "hostaddr", "port", "dbname", "user"]
        let ordered = leading.compactMap { key in options.first { $0.keyword == key } }
            + options.filter { !leading.contains($0.keyword) }
        return ordered.map { option in
            let value: String
            if isSecret(option.keyword) {
                value = "***"
            } else if option.keyword == "dbname", looksLikeConninfo(option.value) {
                // libpq does not expand a dbname inside a conninfo string, but a URI pasted
                // there still holds whatever password it was written with.
                value = conninfoValue(redactedConninfo(option.value))
            } else {
                value = conninfoValue(option.value)
            }
            return "\(option.keyword)=\(value)"
        }.joined(separator: " ")
    }

    /// The options a conninfo sets explicitly, or nil when libpq rejects it.
    private static func parsedOptions(_ conninfo: String) -> [(keyword: String, value: String)]? {
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(conninfo, &errorMessage) else {
            // The error quotes fragments of the string: dropped unread.
            if let errorMessage { PQfreemem(errorMessage) }
            return nil
        }
        defer { PQconninfoFree(options) }
        var result: [(keyword: String, value: String)] = []
        var option = options
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val { result.append((String(cString: keyword), String(cString: value))) }
            option += 1
        }
        return result
    }

    /// Keywords whose values are secrets: `password`, `sslpassword` (the client key's
    /// passphrase) and any later libpq option named like them (an OAuth client secret).
    private static func isSecret(_ keyword: String) -> Bool {
        keyword.contains("password") || keyword.contains("secret")
    }

    /// What libpq reads as a connection string rather than a name where it does expand a
    /// dbname (PQconnectdbParams): a URI prefix or an `=`.
    private static func looksLikeConninfo(_ value: String) -> Bool {
        value.hasPrefix("postgresql://") || value.hasPrefix("postgres://") || value.contains("=")
    }

    /// A value in conninfo syntax: bare when it can be, else single-quoted with `\` and `'` escaped,
    /// for building a `key=value` connection string that no value can break out of.
    public static func conninfoValue(_ value: String) -> String {
        let plain = !value.isEmpty && !value.contains { $0.isWhitespace || $0 == "'" || $0 == "\\" }
        if plain { return value }
        var text = "'"
        for character in value {
            if character == "'" || character == "\\" { text.append("\\") }
            text.append(character)
        }
        return text + "'"
    }

    /// The password given in the conninfo, if it parses, so it can be scrubbed from any message;
    /// `parses` is false when libpq rejects the string (its parse errors quote fragments of it).
    static func inspect(_ conninfo: String) -> (parses: Bool, password: String?) {
        guard let options = parsedOptions(conninfo) else { return (false, nil) }
        return (true, options.last { $0.keyword == "password" }?.value)
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
