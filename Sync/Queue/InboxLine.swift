import CardCore
import Foundation

/// One inbox.jsonl line: a bureau decision or conflict event delivered to the agency.
///
/// Written with keys in the order `{"ledger_id", "event_id", "application_id", "type",
/// "occurred_at", "data"}`, UUIDs lower-case, `occurred_at` in RFC 3339 with its original
/// offset, `data` compact with sorted keys.
public struct InboxLine: Sendable, Equatable {
    public var ledgerID: Int64
    public var eventID: UUID
    public var applicationID: UUID
    public var type: EventType
    public var occurredAt: Timestamp
    public var data: JSONValue

    public init(ledgerID: Int64, eventID: UUID, applicationID: UUID, type: EventType, occurredAt: Timestamp,
                data: JSONValue)
    {
        self.ledgerID = ledgerID
        self.eventID = eventID
        self.applicationID = applicationID
        self.type = type
        self.occurredAt = occurredAt
        self.data = data
    }

    /// The inbox line for an event of the ledger.
    public init(event: LedgerEvent) {
        self.init(ledgerID: event.ledgerID, eventID: event.eventID, applicationID: event.applicationID,
                  type: event.type, occurredAt: event.occurredAt, data: event.data)
    }

    /// The line, with its trailing `\n`.
    public func lineBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out)
        return out
    }

    /// Appends the line, with its trailing `\n`.
    public func write(into out: inout [UInt8]) {
        out.append(contentsOf: #"{"ledger_id":"#.utf8)
        JSONWriter.writeInt(ledgerID, into: &out)
        out.append(contentsOf: #","event_id":"#.utf8)
        JSONWriter.writeString(eventID.uuidString.lowercased(), into: &out)
        out.append(contentsOf: #","application_id":"#.utf8)
        JSONWriter.writeString(applicationID.uuidString.lowercased(), into: &out)
        out.append(contentsOf: #","type":"#.utf8)
        JSONWriter.writeString(type.rawValue, into: &out)
        out.append(contentsOf: #","occurred_at":"#.utf8)
        JSONWriter.writeString(occurredAt.rfc3339, into: &out)
        out.append(contentsOf: #","data":"#.utf8)
        JSONWriter.write(data, into: &out)
        out.append(contentsOf: "}\n".utf8)
    }

    /// Parses one inbox line (without `\n`); the reason text on failure.
    public static func parse(_ line: [UInt8]) -> Result<InboxLine, InboxLineError> {
        func fail(_ why: String) -> Result<InboxLine, InboxLineError> { .failure(InboxLineError(reason: why)) }
        let value: JSONValue
        do {
            value = try JSONParser.parse(line)
        } catch {
            return fail("not JSON: \(error)")
        }
        guard case .object(let o) = value else { return fail("not a JSON object") }
        guard case .int(let ledgerID)? = o["ledger_id"] else { return fail("ledger_id is not an integer") }
        guard let e = o["event_id"]?.stringValue, let eventID = EventLineValidator.parseUUID(e) else {
            return fail("event_id is not a UUID")
        }
        guard let a = o["application_id"]?.stringValue, let applicationID = EventLineValidator.parseUUID(a) else {
            return fail("application_id is not a UUID")
        }
        guard let t = o["type"]?.stringValue, let type = EventType(rawValue: t) else {
            return fail("type is not an event type")
        }
        guard let ts = o["occurred_at"]?.stringValue, let occurredAt = Timestamp(rfc3339: ts) else {
            return fail("occurred_at is not an RFC 3339 timestamp")
        }
        guard let data = o["data"], case .object = data else { return fail("data is not an object") }
        return .success(InboxLine(ledgerID: ledgerID, eventID: eventID, applicationID: applicationID, type: type,
                                   occurredAt: occurredAt, data: data))
    }
}

public struct InboxLineError: Error, Sendable, Equatable {
    public var reason: String
}
