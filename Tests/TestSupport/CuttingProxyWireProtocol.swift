import Foundation
#if canImport(Glibc)
import Glibc
#endif

// The PostgreSQL wire protocol, as far as CuttingProxy needs it to cut at a named message:
// message framing, the text a cut may match, and writing whole buffers to a socket.
extension CuttingProxy {
    /// The size of the complete message at `start`, or nil if it has not all arrived.
    static func messageSize(_ bytes: [UInt8], at start: Int, typed: Bool) -> Int? {
        let header = typed ? 5 : 4
        guard bytes.count - start >= header else { return nil }
        let at = start + (typed ? 1 : 0)
        let length = Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
        let size = length + (typed ? 1 : 0)
        guard size >= header, bytes.count - start >= size else { return nil }
        return size
    }

    /// What a message says, as far as a cut may look: a query's SQL (`Q`, `P`), a command tag (`C`).
    static func text(of message: [UInt8], typed: Bool) -> String {
        guard typed, message.count > 5 else { return "" }
        var body = message[5...]
        switch message[0] {
        case UInt8(ascii: "P"):  // Parse: statement name, then the query, each NUL-terminated.
            guard let end = body.firstIndex(of: 0) else { return "" }
            body = body[(end + 1)...]
        case UInt8(ascii: "Q"), UInt8(ascii: "C"): break
        default: return ""
        }
        let text = body.prefix { $0 != 0 }.prefix(512)
        return String(decoding: text, as: UTF8.self)
    }

    /// Writes all of `bytes`; false when the peer is gone. MSG_NOSIGNAL: a closed peer must not
    /// SIGPIPE the test process.
    static func send(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
        var sent = 0
        return bytes.withUnsafeBytes { raw in
            while sent < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return false }
                sent += n
            }
            return true
        }
    }
}
