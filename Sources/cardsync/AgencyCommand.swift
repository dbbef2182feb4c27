import ArgumentParser
import CardCore
import CardDatabase
import Foundation

struct AgencyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agency",
        abstract: "Register and list handling agencies.",
        subcommands: [Add.self, List.self, Credentials.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register an agency (or update its name, district, channel).")
        @Argument(help: "Agency code, e.g. CS-FR-001.") var code: String
        @Option(help: "Agency name as it should appear in reports.") var name: String
        @Option(help: "District.") var district: String?
        @Option(help: "counter or online.") var channel: AgencyChannel = .counter
        @OptionGroup var db: DatabaseOptions

        func validate() throws {
            guard Agency.isValidCode(code) else {
                throw ValidationError("agency code '\(code)' must match ^[A-Z0-9][A-Z0-9-]{1,31}$")
            }
        }

        func run() throws {
            let registry = AgencyRegistry(connection: try db.connect())
            let isNew = try registry.add(Agency(code: code, name: name, district: district, channel: channel))
            print(isNew ? "Registered agency \(code) (\(name))." : "Updated agency \(code) (\(name)).")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List registered agencies.")
        @OptionGroup var db: DatabaseOptions
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let agencies = try AgencyRegistry(connection: try db.connect()).list()
            if json {
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
            abstract: "Create or rotate the agency's own database role; prints the role and its new password once.")
        @Argument(help: "Agency code.") var code: String
        @Flag(help: "Print {\"agency_code\", \"role\", \"password\"}.") var json = false
        @OptionGroup var db: DatabaseOptions

        func run() throws {
            let registry = AgencyRegistry(connection: try db.connect())
            guard try registry.exists(code) else {
                throw CommandFailure("agency \(code) is not registered", hint: "register it first: cardsync agency add \(code) --name NAME")
            }
            let (role, password) = try registry.rotateCredentials(code)
            if json {
                print(JSONWriter.object([("agency_code", .string(code)), ("role", .string(role)), ("password", .string(password))], pretty: true))
            } else {
                print("Role: \(role)")
                print("Password: \(password)")
                print("The password is shown only now; the server keeps only its SCRAM verifier. Running this again rotates it.")
            }
        }
    }
}

extension AgencyChannel: ExpressibleByArgument {}
