import ArgumentParser
import CardCore
import CardDatabase
import Foundation
import PostgresClient

struct AgencyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agency",
        abstract: "Register and list handling agencies.",
        discussion: """
            Examples:
              cardsync agency add CS-FR-001 --name "芙蓉区社保卡服务网点" --district 芙蓉区
              cardsync agency list
              cardsync agency credentials CS-FR-001 --json
            """,
        subcommands: [Add.self, List.self, Credentials.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register an agency (or update its name, district, channel).",
            discussion: """
                Run again with the same code, it updates the name, district and channel.

                Examples:
                  cardsync agency add CS-FR-001 --name "芙蓉区社保卡服务网点" --district 芙蓉区
                  cardsync agency add CS-ONLINE --name "Online service" --channel online
                """)
        @Argument(help: "Agency code, e.g. CS-FR-001.", transform: AgencyCode.argument) var code: AgencyCode
        @Option(help: "Agency name as it should appear in reports.") var name: String
        @Option(help: "District.") var district: String?
        @Option(help: "counter or online.") var channel: AgencyChannel = .counter
        @OptionGroup var db: DatabaseOptions

        func run() throws {
            let registry = AgencyRegistry(connection: try db.connect())
            let isNew = try registry.add(Agency(code: code.rawValue, name: name, district: district, channel: channel))
            print(isNew ? "Registered agency \(code) (\(name))." : "Updated agency \(code) (\(name)).")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List registered agencies.",
            discussion: """
                Examples:
                  cardsync agency list
                  cardsync agency list --format json
                """)
        @OptionGroup var db: DatabaseOptions
        @OptionGroup var output: OutputFormatOptions

        func run() throws {
            let agencies = try AgencyRegistry(connection: try db.connect()).list()
            if output.isJSON {
                let rows: [JSONValue] = agencies.map {
                    ["code": .string($0.code), "name": .string($0.name),
                     "district": $0.district.map(JSONValue.string) ?? .null, "channel": .string($0.channel.rawValue)]
                }
                print(JSONWriter.string(.object(["agencies": .array(rows)]), pretty: true))
                return
            }
            if agencies.isEmpty {
                print("No agencies registered. Add one with: cardsync agency add CODE --name NAME")
                return
            }
            print(TextTable(headers: ["code", "name", "district", "channel"],
                            rows: agencies.map { [$0.code, $0.name, $0.district ?? "", $0.channel.rawValue] }).render())
        }
    }
}

extension AgencyCommand {
    struct Credentials: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or rotate the agency's own database role; prints the role, its new password and a connection URI once.",
            discussion: """
                The role may stage the agency's own events and read back only what concerns its queue \
                (docs/security.md). Running this again sets a new password; the old one stops working at once.
                With --certificate the role gets no password: it logs in with a client certificate whose common \
                name is the role (a pg_hba.conf line "hostssl DB ROLE ADDRESS cert").

                Examples:
                  cardsync agency credentials CS-FR-001 --host db.bureau.example --port 5432
                  cardsync agency credentials CS-FR-001 --json
                """)
        @Argument(help: "Agency code.", transform: AgencyCode.argument) var agency: AgencyCode
        @OptionGroup var output: OutputFormatOptions
        @Flag(help: "No password: the agency logs in with a client certificate (CN = the role).") var certificate = false
        @Option(help: "Server host name the agency connects to, for the URI (default: where this command connected).") var host: String?
        @Option(help: "Server port for the URI (default: where this command connected).") var port: Int?
        @OptionGroup var db: DatabaseOptions

        func run() throws {
            let code = agency.rawValue
            let connection = try db.connect()
            let registry = AgencyRegistry(connection: connection)
            guard try registry.exists(code) else {
                throw CommandFailure("agency \(code) is not registered", hint: "register it first: cardsync agency add \(code) --name NAME")
            }
            let role: String
            let password: String?
            do {
                (role, password) = certificate ? (try registry.useCertificateLogin(code), nil) : try registry.rotateCredentials(code)
            } catch let error as PostgresError where error.sqlState == "42501" {
                throw CommandFailure("this database role may not hand out agency credentials: \(error.message)",
                                     hint: "run it with the schema owner's role or a member of cardsync_bureau; the owner needs CREATEROLE")
            }
            let uri = Self.uri(role: role, password: password, connection: connection, host: host, port: port)
            if output.isJSON {
                print(JSONWriter.object([("agency_code", .string(code)), ("role", .string(role)),
                                         ("password", password.map(JSONValue.string) ?? .null), ("uri", .string(uri))], pretty: true))
                return
            }
            print("Role: \(role)")
            if let password {
                print("Password: \(password)")
                print("URI: \(uri)")
                print("The password is shown only now; the server keeps only its SCRAM verifier. Running this again rotates it.")
            } else {
                print("URI: \(uri)&sslcert=agency.crt&sslkey=agency.key")
                print("No password: the agency logs in with a client certificate whose CN is \(role), issued by the CA in the server's ssl_ca_file,")
                print("and pg_hba.conf needs: hostssl \(connection.resolvedDatabase) \(role) <agency address> cert")
            }
        }

        /// A libpq URI for the agency: TLS with full verification over TCP; over a Unix socket
        /// (the embedded default on this machine) the socket directory.
        static func uri(role: String, password: String?, connection: Connection, host: String?, port: Int?) -> String {
            let server = host ?? connection.resolvedHost
            let portText = port.map(String.init) ?? connection.resolvedPort
            let user = password.map { "\(role):\($0)" } ?? role
            let database = connection.resolvedDatabase
            if server.hasPrefix("/") {
                let dir = server.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? server
                return "postgresql://\(user)@/\(database)?host=\(dir)&port=\(portText)"
            }
            return "postgresql://\(user)@\(server):\(portText)/\(database)?sslmode=verify-full"
        }
    }
}

extension AgencyChannel: ExpressibleByArgument {}
