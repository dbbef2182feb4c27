// libFuzzer entry point for the outbox reader and validator (built and run by Fuzz/run.sh).
// The property itself is OutboxFuzzProperty in Tests/UnitTests/Sync/FuzzRegressionTests.swift,
// which `swift test` also runs over Fuzz/Corpus.
import Foundation

/// One scratch file per process (libFuzzer's -fork and -jobs start several), in $TMPDIR.
private let scratchFile = FileManager.default.temporaryDirectory
    .appendingPathComponent("cardsync-fuzz-\(getpid()).jsonl")

/// Once per process: the lines at and over the 1 MiB limit, which are too big to mutate at
/// speed (libFuzzer sizes its mutations after the largest seed).
@_cdecl("LLVMFuzzerInitialize")
public func queueFuzzInitialize(_ argc: UnsafeMutablePointer<CInt>?,
                                _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    check(OutboxFuzzProperty.hugeLines(), "the lines at and over 1 MiB")
    return 0
}

/// The input is a whole outbox.jsonl. A violation of the property traps, so that libFuzzer
/// keeps the input as a crash artifact.
@_cdecl("LLVMFuzzerTestOneInput")
public func queueFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    check(Array(UnsafeBufferPointer(start: data, count: size)), "this input")
    return 0
}

private func check(_ bytes: [UInt8], _ what: String) {
    let outcome = OutboxFuzzProperty.check(bytes, scratch: scratchFile)
    guard outcome.violations.isEmpty else {
        let report = outcome.violations.map { "property violated: \($0)\n" }.joined()
        FileHandle.standardError.write(Data(report.utf8))
        fatalError("the outbox property does not hold for \(what)")
    }
}
