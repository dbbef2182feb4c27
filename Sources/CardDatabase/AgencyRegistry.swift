import CardCore
import PostgresClient

/// The central register of handling agencies.
public struct AgencyRegistry {
    let connection: Connection

    public init(connection: Connection) { self.connection = connection }

    public enum Failure: Error, CustomStringConvertible {
        case invalidCode(String)
        case emptyName

        public var description: String {
            switch self {
            case .invalidCode(let code):
                return AgencyCode.problem(code)
            case .emptyName: return "an agency needs a name"
            }
        }
    }

    /// Registers an agency, or updates its name, district and channel. Returns true if new.
    @discardableResult
    public func add(_ agency: Agency) throws -> Bool {
        guard AgencyCode.isValid(agency.code) else { throw Failure.invalidCode(agency.code) }
        guard !agency.name.isEmpty else { throw Failure.emptyName }
        let rows = try connection.query("""
            INSERT INTO cardsync.agencies (code, name, district, channel) VALUES ($1, $2, $3, $4)
            ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, district = EXCLUDED.district, channel = EXCLUDED.channel
            RETURNING (xmax = 0) AS inserted
            """, [.text(agency.code), .text(agency.name), agency.district.map { .text($0) } ?? .null, .text(agency.channel.rawValue)])
        return try rows.first?.decode(Bool.self, column: "inserted") ?? false
    }

    /// Registers the agency if the centre does not know it yet; an existing registration wins.
    public func ensureRegistered(_ agency: Agency) throws {
        try connection.execute("""
            INSERT INTO cardsync.agencies (code, name, district, channel) VALUES ($1, $2, $3, $4)
            ON CONFLICT (code) DO NOTHING
            """, [.text(agency.code), .text(agency.name), agency.district.map { .text($0) } ?? .null, .text(agency.channel.rawValue)])
    }

    public func list() throws -> [Agency] {
        try connection.query("SELECT code, name, district, channel FROM cardsync.agencies ORDER BY code").map { row in
            Agency(code: try row.decode(String.self, column: "code"), name: try row.decode(String.self, column: "name"),
                   district: try row.decode(String?.self, column: "district"),
                   channel: AgencyChannel(rawValue: try row.decode(String.self, column: "channel")) ?? .counter)
        }
    }

    public func exists(_ code: String) throws -> Bool {
        !(try connection.query("SELECT 1 FROM cardsync.agencies WHERE code = $1", [.text(code)]).isEmpty)
    }

    /// The agency's own database role with a new random password (created on first use,
    /// rotated afterwards). The password is returned once and stored nowhere: the server keeps
    /// only its SCRAM verifier, computed on this side.
    public func rotateCredentials(_ code: String) throws -> (role: String, password: String) {
        let role = "cardsync_agency_" + code.lowercased().replacingOccurrences(of: "-", with: "_")
        let password = Self.randomPassword()
        let verifier = try connection.encryptPassword(password, user: role)
        let rows = try connection.query("SELECT cardsync.set_agency_credentials($1, $2) AS role",
                                        [.text(code), .text(verifier)])
        return (try rows.first?.decode(String.self, column: "role") ?? role, password)
    }

    /// The agency's own database role without a password: it logs in with a client
    /// certificate whose common name is the role.
    public func useCertificateLogin(_ code: String) throws -> String {
        let rows = try connection.query("SELECT cardsync.set_agency_credentials($1, NULL) AS role", [.text(code)])
        return try rows.first?.decode(String.self, column: "role") ?? ""
    }

    /// 24 characters from an alphabet without look-alikes, from the system's secure generator.
    static func randomPassword() -> String {
        let alphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<24).map { _ in alphabet[Int(generator.next(upperBound: UInt64(alphabet.count)))] })
    }
}
