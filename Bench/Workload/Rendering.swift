import CardCore

/// Overrides for a `submitted` form, used only to build deliberately invalid lines.
struct FormPatch {
    var channel: String?
    var childBirth: String?
    var childSex: String?
    var childID: String?
    var guardianID: String?
    var relationship: String?
    var phone: String?
    var documents: [String]?
}

/// Renders events as queue lines, keys in the order the spec shows them.
struct Renderer {
    let simulation: Simulation

    /// An outbox line: `{"seq": N, "event_id": ..., "application_id": ..., "type": ..., "occurred_at": ..., "data": {...}}`.
    func appendOutboxLine(seq: Int, _ event: Event, to b: inout [UInt8]) {
        JSONBytes.append("{\"seq\": ", to: &b)
        JSONBytes.appendInt(seq, to: &b)
        JSONBytes.append(", \"event_id\": ", to: &b)
        appendBody(event, to: &b)
        b.append(0x0A)
    }

    /// A bureau decision line: the outbox shape without `seq`.
    func appendBureauLine(_ event: Event, to b: inout [UInt8]) {
        JSONBytes.append("{\"event_id\": ", to: &b)
        appendBody(event, to: &b)
        b.append(0x0A)
    }

    private func appendBody(_ event: Event, to b: inout [UInt8]) {
        JSONBytes.appendQuotedUUID(event.id, to: &b)
        JSONBytes.append(", \"application_id\": ", to: &b)
        JSONBytes.appendQuotedUUID(simulation.apps[Int(event.app)].id, to: &b)
        JSONBytes.append(", \"type\": \"", to: &b)
        b.append(contentsOf: event.type.rawValue.utf8)
        JSONBytes.append("\", \"occurred_at\": ", to: &b)
        JSONBytes.appendQuotedTimestamp(event.time, to: &b)
        JSONBytes.append(", \"data\": ", to: &b)
        appendData(event, to: &b)
        b.append(0x7D)
    }

    func appendData(_ event: Event, to b: inout [UInt8]) {
        let app = simulation.apps[Int(event.app)]
        switch event.type {
        case .submitted:
            Renderer.appendSubmitted(app.form, patch: nil, to: &b)
        case .amended:
            let amendment = simulation.amendments[Int(event.aux)]
            JSONBytes.append("{\"base_version\": ", to: &b)
            JSONBytes.appendInt(amendment.baseVersion, to: &b)
            JSONBytes.append(", \"changes\": {", to: &b)
            for (i, change) in amendment.changes.enumerated() {
                if i > 0 { JSONBytes.append(", ", to: &b) }
                b.append(0x22); JSONBytes.append(change.path, to: &b); JSONBytes.append("\": ", to: &b)
                switch change.value {
                case .text(let s): JSONBytes.appendString(s, to: &b)
                case .documents(let mask): Documents.append(mask, to: &b)
                }
            }
            JSONBytes.append("}}", to: &b)
        case .documentsVerified:
            JSONBytes.append("{\"documents\": ", to: &b)
            Documents.append(UInt8(event.aux), to: &b)
            b.append(0x7D)
        case .withdrawn:
            JSONBytes.append("{\"reason\": ", to: &b)
            JSONBytes.appendString(ChangshaData.withdrawalReasons[Int(event.aux)], to: &b)
            b.append(0x7D)
        case .cardIssued:
            JSONBytes.append("{\"card_number\": ", to: &b)
            Renderer.appendCardNumber(app.card, to: &b)
            JSONBytes.append(", \"collected_by\": {\"name\": ", to: &b)
            JSONBytes.appendString(app.collectedName, to: &b)
            JSONBytes.append(", \"relationship\": \"", to: &b)
            b.append(contentsOf: app.collectedRelationship.rawValue.utf8)
            JSONBytes.append("\"}}", to: &b)
        case .approved:
            JSONBytes.append("{}", to: &b)
        case .rejected:
            JSONBytes.append("{\"reason\": ", to: &b)
            JSONBytes.appendString(ChangshaData.rejectionReasons[Int(event.aux)], to: &b)
            b.append(0x7D)
        case .returned:
            JSONBytes.append("{\"reason\": ", to: &b)
            JSONBytes.appendString(ChangshaData.returnReasons[Int(event.aux)].reason, to: &b)
            b.append(0x7D)
        case .cardProduced:
            JSONBytes.append("{\"card_number\": ", to: &b)
            Renderer.appendCardNumber(app.card, to: &b)
            b.append(0x7D)
        case .cardDispatched:
            JSONBytes.append("{\"agency_code\": ", to: &b)
            JSONBytes.appendString(simulation.agencies[Int(app.dispatchAgency)].agency.code, to: &b)
            b.append(0x7D)
        case .conflictOpened, .conflictResolved:
            JSONBytes.append("{}", to: &b)
        }
    }

    /// `"A"` and eight digits, quoted.
    static func appendCardNumber(_ n: Int32, to b: inout [UInt8]) {
        JSONBytes.append("\"A", to: &b)
        JSONBytes.appendPadded(Int(n), width: 8, to: &b)
        b.append(0x22)
    }

    static func appendSubmitted(_ f: Form, patch: FormPatch?, to b: inout [UInt8]) {
        JSONBytes.append("{\"channel\": ", to: &b)
        JSONBytes.appendString(patch?.channel ?? f.channel.rawValue, to: &b)
        JSONBytes.append(", \"child\": {\"name\": ", to: &b)
        JSONBytes.appendString(f.childName, to: &b)
        JSONBytes.append(", \"id_number\": ", to: &b)
        JSONBytes.appendString(patch?.childID ?? f.childID, to: &b)
        JSONBytes.append(", \"birth_date\": ", to: &b)
        if let birth = patch?.childBirth { JSONBytes.appendString(birth, to: &b) } else { JSONBytes.appendDate(f.childBirth, to: &b) }
        JSONBytes.append(", \"sex\": ", to: &b)
        JSONBytes.appendString(patch?.childSex ?? f.childSex.rawValue, to: &b)
        JSONBytes.append("}, \"guardian\": {\"name\": ", to: &b)
        JSONBytes.appendString(f.guardianName, to: &b)
        JSONBytes.append(", \"id_number\": ", to: &b)
        JSONBytes.appendString(patch?.guardianID ?? f.guardianID, to: &b)
        JSONBytes.append(", \"relationship\": ", to: &b)
        JSONBytes.appendString(patch?.relationship ?? f.relationship.rawValue, to: &b)
        JSONBytes.append(", \"phone\": ", to: &b)
        JSONBytes.appendString(patch?.phone ?? f.phone, to: &b)
        JSONBytes.append("}, \"household\": {\"register_number\": ", to: &b)
        JSONBytes.appendString(f.registerNumber, to: &b)
        JSONBytes.append(", \"address\": ", to: &b)
        JSONBytes.appendString(f.address, to: &b)
        JSONBytes.append("}, \"documents\": ", to: &b)
        if let documents = patch?.documents {
            b.append(0x5B)
            for (i, d) in documents.enumerated() {
                if i > 0 { JSONBytes.append(", ", to: &b) }
                JSONBytes.appendString(d, to: &b)
            }
            b.append(0x5D)
        } else {
            Documents.append(f.documents, to: &b)
        }
        b.append(0x7D)
    }

    /// `agency.json` or an element of `agencies.json`: `{"code", "name", "district", "channel"}`.
    static func appendAgency(_ a: Agency, to b: inout [UInt8]) {
        JSONBytes.append("{\"code\": ", to: &b)
        JSONBytes.appendString(a.code, to: &b)
        JSONBytes.append(", \"name\": ", to: &b)
        JSONBytes.appendString(a.name, to: &b)
        JSONBytes.append(", \"district\": ", to: &b)
        if let d = a.district { JSONBytes.appendString(d, to: &b) } else { JSONBytes.append("null", to: &b) }
        JSONBytes.append(", \"channel\": ", to: &b)
        JSONBytes.appendString(a.channel.rawValue, to: &b)
        b.append(0x7D)
    }
}
