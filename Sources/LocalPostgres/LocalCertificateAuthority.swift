import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A certificate authority of one cluster's own, and the server certificate it signs, for
/// clients that connect with `sslmode=verify-full`.
///
/// verify-full makes libpq check that the server's certificate chains to a CA certificate the
/// client was given (`sslrootcert`) and that it names the host the client dialled. A CA of our
/// own, rather than a self-signed server certificate, means the server certificate can be
/// replaced (another listen host, renewal) while agencies keep the CA file they were given.
///
/// Files in `DIR/tls/` (mode 700): `ca.key` and `server.key` (mode 600, owned by the server's
/// account: PostgreSQL refuses a key others can read), `ca.crt` (10 years) and `server.crt`
/// (2 years, renewed at a start less than 30 days before it expires). EC P-256 keys. Everything
/// is made with the `openssl` command-line tool, run directly (never through a shell), with
/// configuration files written here, so the system's openssl.cnf plays no part.
struct LocalCertificateAuthority {
    let directory: URL
    private let openssl: URL
    private let account: ServerAccount
    private let logger: Logger?

    static let caValidityDays = 3650
    static let serverValidityDays = 730
    static let renewalSeconds = 30 * 24 * 3600

    var certificate: URL { directory.appendingPathComponent("ca.crt") }
    var key: URL { directory.appendingPathComponent("ca.key") }
    var serverCertificate: URL { directory.appendingPathComponent("server.crt") }
    var serverKey: URL { directory.appendingPathComponent("server.key") }

    init(directory: URL, account: ServerAccount, logger: Logger?) throws {
        self.directory = directory
        self.account = account
        self.logger = logger
        openssl = try Self.locateOpenSSL()
    }

    /// Makes sure the CA exists and a server certificate signed by it names every one of
    /// `names` (DNS names or IP addresses) and is valid for a while yet: existing files are
    /// reused, anything missing, expiring or not matching is made anew.
    func ensureServerCertificate(names: [String]) throws {
        try prepareDirectory()
        var caIsNew = false
        if let problem = try certificateProblem(certificate: certificate, key: key, names: [], validFor: 0) {
            if FileManager.default.fileExists(atPath: certificate.path) || FileManager.default.fileExists(atPath: key.path) {
                logger?.warning("making a new local certificate authority: clients need the new CA certificate",
                                metadata: ["reason": "\(problem)", "certificate": "\(certificate.path)"])
            }
            try makeCertificateAuthority()
            caIsNew = true
        }
        let problem = caIsNew
            ? "the certificate authority is new"
            : try certificateProblem(certificate: serverCertificate, key: serverKey, names: names,
                                     validFor: Self.renewalSeconds, issuer: certificate)
        if let problem {
            logger?.info("making a new server certificate", metadata: ["reason": "\(problem)", "names": "\(names)"])
            try makeServerCertificate(names: names)
        }
    }

    // MARK: - Checking

    /// Why the certificate cannot be used as it is, or nil when it can: missing files, a key
    /// that is not the certificate's, expiry within `validFor` seconds, a name it lacks, or
    /// (with `issuer`) a signature that does not verify against that CA certificate.
    private func certificateProblem(
        certificate: URL, key: URL, names: [String], validFor seconds: Int, issuer: URL? = nil
    ) throws -> String? {
        for file in [certificate, key] where !FileManager.default.fileExists(atPath: file.path) {
            return "\(file.lastPathComponent) is missing"
        }
        let (_, inspected) = try Subprocess.runAllowingFailure(
            openssl, ["x509", "-in", certificate.path, "-noout", "-pubkey", "-ext", "subjectAltName",
                      "-checkend", String(seconds)])
        guard let certificateKey = Self.publicKey(in: inspected) else {
            return "\(certificate.lastPathComponent) is unreadable: \(inspected.trimmingCharacters(in: .whitespacesAndNewlines))"
        }
        let (keyStatus, keyOutput) = try Subprocess.runAllowingFailure(openssl, ["pkey", "-in", key.path, "-pubout"])
        guard keyStatus == 0, Self.publicKey(in: keyOutput) == certificateKey else {
            return "\(key.lastPathComponent) is not the key of \(certificate.lastPathComponent)"
        }
        if inspected.contains("Certificate will expire") {
            return seconds == 0 ? "it has expired" : "it expires within \(seconds / 86400) days"
        }
        let covered = Self.subjectAltNames(in: inspected)
        for name in names where !covered.contains(SubjectAltName(name)) {
            return "it does not name \(name)"
        }
        if let issuer {
            let (status, output) = try Subprocess.runAllowingFailure(
                openssl, ["verify", "-CAfile", issuer.path, certificate.path])
            if status != 0 {
                return "it does not verify against \(issuer.lastPathComponent): \(output.trimmingCharacters(in: .whitespacesAndNewlines))"
            }
        }
        return nil
    }

    /// The PEM public key block `openssl … -pubkey` / `-pubout` printed.
    static func publicKey(in output: String) -> String? {
        guard let begin = output.range(of: "-----BEGIN PUBLIC KEY-----"),
              let end = output.range(of: "-----END PUBLIC KEY-----", range: begin.upperBound..<output.endIndex)
        else { return nil }
        return String(output[begin.lowerBound..<end.upperBound])
    }

    /// The entries of `X509v3 Subject Alternative Name:` as `openssl x509 -ext` prints them
    /// (`DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1`).
    static func subjectAltNames(in output: String) -> Set<SubjectAltName> {
        let lines = output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let header = lines.firstIndex(where: { $0.hasPrefix("X509v3 Subject Alternative Name") }),
              header + 1 < lines.count
        else { return [] }
        var names = Set<SubjectAltName>()
        for entry in lines[header + 1].components(separatedBy: ", ") {
            if entry.hasPrefix("DNS:") {
                names.insert(.dns(entry.dropFirst(4).lowercased()))
            } else if entry.hasPrefix("IP Address:"), let address = IPAddress(String(entry.dropFirst(11))) {
                names.insert(.ip(address))
            }
        }
        return names
    }

    /// A name as certificates compare it: IP addresses in binary, DNS names without case.
    enum SubjectAltName: Hashable {
        case dns(String)
        case ip(IPAddress)

        init(_ name: String) {
            self = IPAddress(name).map(SubjectAltName.ip) ?? .dns(name.lowercased())
        }

        var configValue: String {
            switch self {
            case .dns(let name): return "DNS:\(name)"
            case .ip(.v4(let bytes)): return "IP:" + bytes.map(String.init).joined(separator: ".")
            case .ip(.v6(let bytes)):
                return "IP:" + stride(from: 0, to: 16, by: 2)
                    .map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }.joined(separator: ":")
            }
        }
    }

    // MARK: - Making

    private func makeCertificateAuthority() throws {
        let newKey = staged(key), newCertificate = staged(certificate)
        let config = directory.appendingPathComponent("ca.cnf")
        defer { [newKey, newCertificate, config].forEach { unlink($0.path) } }
        try makeKey(newKey)
        let label = ["cardsync local CA", TCPListener.machineName(), String(UInt32.random(in: 0...UInt32.max), radix: 16)]
            .compactMap { $0 }.joined(separator: " ")
        try ServerFile.replace(config, with: """
            [req]
            distinguished_name = subject
            prompt = no
            x509_extensions = extensions
            [subject]
            CN = \(label)
            [extensions]
            basicConstraints = critical, CA:TRUE, pathlen:0
            keyUsage = critical, keyCertSign, cRLSign
            subjectKeyIdentifier = hash

            """, mode: 0o600, account: account)
        try Subprocess.run(openssl, ["req", "-new", "-x509", "-config", config.path, "-key", newKey.path, "-sha256",
                                     "-days", String(Self.caValidityDays), "-set_serial", Self.randomSerial(),
                                     "-out", newCertificate.path])
        try install(key: newKey, as: key, certificate: newCertificate, as: certificate)
    }

    private func makeServerCertificate(names: [String]) throws {
        let newKey = staged(serverKey), newCertificate = staged(serverCertificate)
        let request = directory.appendingPathComponent("server.csr")
        let config = directory.appendingPathComponent("server.cnf")
        let extensions = directory.appendingPathComponent("server-extensions.cnf")
        defer { [newKey, newCertificate, request, config, extensions].forEach { unlink($0.path) } }
        try makeKey(newKey)
        try ServerFile.replace(config, with: """
            [req]
            distinguished_name = subject
            prompt = no
            [subject]
            CN = \(names.first ?? "localhost")

            """, mode: 0o600, account: account)
        let alternativeNames = names.map { SubjectAltName($0).configValue }.joined(separator: ", ")
        try ServerFile.replace(extensions, with: """
            basicConstraints = critical, CA:FALSE
            keyUsage = critical, digitalSignature
            extendedKeyUsage = serverAuth
            subjectKeyIdentifier = hash
            authorityKeyIdentifier = keyid
            subjectAltName = \(alternativeNames)

            """, mode: 0o600, account: account)
        try Subprocess.run(openssl, ["req", "-new", "-config", config.path, "-key", newKey.path, "-out", request.path])
        try Subprocess.run(openssl, ["x509", "-req", "-in", request.path, "-CA", certificate.path, "-CAkey", key.path,
                                     "-sha256", "-days", String(Self.serverValidityDays), "-set_serial", Self.randomSerial(),
                                     "-extfile", extensions.path, "-out", newCertificate.path])
        try install(key: newKey, as: serverKey, certificate: newCertificate, as: serverCertificate)
    }

    private func makeKey(_ url: URL) throws {
        try Subprocess.run(openssl, ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", url.path])
    }

    /// Gives the new files their owner and mode, then moves them into place, key first. A crash
    /// between the two renames leaves a key that is not the certificate's, which the next start
    /// notices (`certificateProblem`) and repairs.
    private func install(key newKey: URL, as keyURL: URL, certificate newCertificate: URL, as certificateURL: URL) throws {
        try account.takeOwnership(of: newKey.path, mode: 0o600)
        try account.takeOwnership(of: newCertificate.path, mode: 0o644)
        for (from, to) in [(newKey, keyURL), (newCertificate, certificateURL)] where rename(from.path, to.path) != 0 {
            throw LocalClusterError("could not move \(from.path) to \(to.path): \(String(cString: strerror(errno)))")
        }
    }

    private func staged(_ url: URL) -> URL {
        url.deletingLastPathComponent().appendingPathComponent(url.lastPathComponent + ".new")
    }

    private func prepareDirectory() throws {
        if mkdir(directory.path, 0o700) != 0 && errno != EEXIST {
            throw LocalClusterError("could not create \(directory.path): \(String(cString: strerror(errno)))")
        }
        try account.takeOwnership(of: directory.path, mode: 0o700)
    }

    /// A positive 63-bit serial: certificates from one CA must not share a serial number.
    private static func randomSerial() -> String {
        "0x" + String(UInt64.random(in: 1...UInt64(Int64.max)), radix: 16)
    }

    static func locateOpenSSL(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> URL {
        let candidates = ["/usr/bin"] + (environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for directory in candidates {
            let path = URL(fileURLWithPath: directory).appendingPathComponent("openssl")
            if FileManager.default.isExecutableFile(atPath: path.path) { return path }
        }
        throw LocalClusterError("TLS needs the openssl command-line tool, which was not found in /usr/bin or on PATH; install it: apt-get install openssl")
    }
}
