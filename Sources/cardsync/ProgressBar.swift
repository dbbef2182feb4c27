import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A one-line progress bar on stderr, drawn only when stderr is a terminal (so logs, pipes and
/// CI output stay clean) and at most ten times a second.
final class ProgressBar: Sendable {
    /// What the line shows now; held in a Mutex because workers update the bar from their threads.
    private struct Drawing {
        var lastDraw = Date.distantPast
        var drawn = false
    }

    private let label: String
    private let enabled: Bool
    private let drawing = Mutex(Drawing())

    /// Whether the bar is drawn (stderr is a terminal), for work that can report progress more
    /// finely at some cost.
    var isEnabled: Bool { enabled }

    init(_ label: String, enabled: Bool = isatty(STDERR_FILENO) == 1) {
        self.label = label
        self.enabled = enabled
    }

    /// Draws `fraction` (0...1) with a short note such as "3/12 agencies".
    func update(_ fraction: Double, note: String = "") {
        guard enabled else { return }
        drawing.withLock { state in
            let now = Date()
            guard now.timeIntervalSince(state.lastDraw) >= 0.1 || fraction >= 1 else { return }
            state.lastDraw = now
            let width = 30
            let filled = Int((max(0, min(1, fraction)) * Double(width)).rounded())
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            let percent = Int((fraction * 100).rounded())
            FileHandle.standardError.write(Data("\r\(label) \(bar) \(percent)% \(note)\u{1B}[K".utf8))
            state.drawn = true
        }
    }

    /// Draws the label and `text` without a bar, for work that cannot say how far it is (a
    /// library call with no progress of its own): the clerk sees that something is happening.
    func note(_ text: String) {
        guard enabled else { return }
        drawing.withLock { state in
            FileHandle.standardError.write(Data("\r\(label) \(text)\u{1B}[K".utf8))
            state.drawn = true
        }
    }

    /// Clears the line.
    func finish() {
        guard enabled else { return }
        drawing.withLock { state in
            if state.drawn { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            state.drawn = false
        }
    }
}

/// Writes a line to stderr (warnings, notes; stdout stays for results).
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
