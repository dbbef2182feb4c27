import Foundation

extension UUID {
    /// The namespace of the ids cardsync derives from names (RFC 9562 §5.3): a fixed random id,
    /// so that no other software's name-based ids can coincide with cardsync's.
    package static let cardsyncNamespace = UUID(uuidString: "6a1d3c52-0b7e-4f2a-9c4e-2d8f5b61e0a7")!

    /// The version-3 (MD5, name-based) UUID of `name` in `namespace`: the same name always gives
    /// the same id, on every machine and in every run.
    ///
    /// The merge names the events it writes itself after what caused them, so that a centre
    /// restored from a backup, re-merging the same agency events, writes them under the same
    /// event_id the agencies' inboxes already hold instead of a second, unrelated one.
    package init(v3 name: String, in namespace: UUID = .cardsyncNamespace) {
        let n = namespace.uuid
        var bytes: [UInt8] = [n.0, n.1, n.2, n.3, n.4, n.5, n.6, n.7, n.8, n.9, n.10, n.11, n.12, n.13, n.14, n.15]
        bytes += Array(name.utf8)
        var d = MD5.digest(bytes)
        d[6] = d[6] & 0x0F | 0x30 // version 3
        d[8] = d[8] & 0x3F | 0x80 // the RFC variant
        self.init(uuid: (d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15]))
    }
}
