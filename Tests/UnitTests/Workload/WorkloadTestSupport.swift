import CardCore
import Foundation
import Testing
@testable import Workload

/// A fresh empty directory path under the system's temporary directory.
func temporaryDirectory(_ name: String = #function) -> URL {
    let clean = name.filter { $0.isLetter || $0.isNumber }
    return FileManager.default.temporaryDirectory
        .appendingPathComponent("cardsync-workload-\(clean)-\(UUID().uuidString)", isDirectory: true)
}

/// The reference end used by the tests: the period ends at 2026-11-01 00:00 +08:00.
let testEnd = CivilDate(year: 2026, month: 11, day: 1)!

/// Every file under `root`, by relative path, sorted.
func directoryContents(_ root: URL) throws -> [(path: String, data: Data)] {
    let fm = FileManager.default
    guard let enumerator = fm.enumerator(atPath: root.path) else { return [] }
    var paths: [String] = []
    while let next = enumerator.nextObject() as? String {
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: root.appendingPathComponent(next).path, isDirectory: &isDirectory), !isDirectory.boolValue {
            paths.append(next)
        }
    }
    return try paths.sorted().map { ($0, try Data(contentsOf: root.appendingPathComponent($0))) }
}

/// FNV-1a over every path and byte: a fingerprint of a directory.
func fingerprint(_ root: URL) throws -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    func mix(_ bytes: some Sequence<UInt8>) { for b in bytes { hash = (hash ^ UInt64(b)) &* 0x100_0000_01B3 } }
    for (path, data) in try directoryContents(root) {
        mix(path.utf8); mix([0]); mix(data); mix([0])
    }
    return hash
}

/// Splits a file into lines (without their `\n`); a final line without `\n` is reported separately.
func lines(_ data: Data) -> (complete: [Data], trailing: Data?) {
    var result: [Data] = []
    var start = data.startIndex
    for i in data.indices where data[i] == 0x0A {
        result.append(data[start..<i])
        start = i + 1
    }
    return (result, start < data.endIndex ? data[start...] : nil)
}

func jsonObject(_ data: Data) -> [String: Any]? {
    guard String(data: data, encoding: .utf8) != nil else { return nil }
    return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
}

/// An integer that JSON wrote as a number (not a string).
func jsonInt(_ value: Any?) -> Int? {
    guard let value, !(value is String), let n = value as? NSNumber else { return nil }
    return n.intValue
}
