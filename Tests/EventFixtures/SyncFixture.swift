import CardCore
import CardSync
import Foundation

/// Valid events for one agency, with valid identity numbers, for tests with or without a server.
public enum SyncFixture {
    public static let agency = Agency(code: "CS-FR-001", name: "芙蓉区社保卡服务网点", district: "芙蓉区", channel: .counter)
    public static let region = "430102"
    public static let shanghai: Int32 = 8 * 3600

    /// A valid child identity number, different for every `n` in 0..<250_000 (born in 2019-2020).
    public static func childID(_ n: Int) -> IdentityNumber {
        let birth = CivilDate(dayNumber: CivilDate(year: 2019, month: 3, day: 15)!.dayNumber + n / 500)
        return IdentityNumber.make(regionCode: region, birthDate: birth, sequence: n % 500 * 2 + 1)
    }

    public static let guardianID = IdentityNumber.make(regionCode: region, birthDate: CivilDate(year: 1988, month: 1, day: 1)!,
                                                sequence: 11)

    /// `data` of a valid `submitted` event for the child `childID(n)`.
    public static func submittedData(child n: Int, channel: String = "counter") -> JSONValue {
        let child = childID(n)
        return [
            "channel": .string(channel),
            "child": ["name": .string("王小明\(n)"), "id_number": .string(child.text),
                      "birth_date": .string(child.birthDate.description), "sex": .string(child.sex == .male ? "M" : "F")],
            "guardian": ["name": "王建国", "id_number": .string(guardianID.text), "relationship": "father",
                         "phone": "13812345678"],
            "household": ["register_number": "430102000123", "address": "长沙市芙蓉区五一大道100号"],
            "documents": ["birth_certificate", "household_register", "guardian_id", "photo"],
        ]
    }

    /// A line object without `seq`.
    public static func event(_ type: String, app: UUID, at: Timestamp, data: JSONValue, eventID: UUID = UUID()) -> JSONValue {
        [
            "event_id": .string(eventID.lowercased), "application_id": .string(app.lowercased), "type": .string(type),
            "occurred_at": .string(at.rfc3339), "data": data,
        ]
    }

    /// An instant `minutes` after a base two days before now, written in +08:00.
    public static func at(minutes: Int) -> Timestamp {
        let base = (Timestamp.now.microseconds / 60_000_000 - 2 * 24 * 60) * 60_000_000
        return Timestamp(microseconds: base + Int64(minutes) * 60_000_000, offsetSeconds: shanghai)
    }

    /// A bureau decision line (the outbox shape without `seq`), for a `bureau import` file.
    public static func decision(_ type: EventType, app: UUID, at: Timestamp, data: JSONValue = [:], eventID: UUID = UUID()) -> JSONValue {
        event(type.rawValue, app: app, at: at, data: data, eventID: eventID)
    }

    /// Writes JSON lines to a file (each with `\n`).
    public static func writeLines(_ values: [JSONValue], to url: URL) throws {
        var bytes: [UInt8] = []
        for value in values { bytes += JSONWriter.bytes(value) + [0x0A] }
        try Data(bytes).write(to: url)
    }
}
