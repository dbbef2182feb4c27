#if canImport(Glibc)
import Glibc
#endif

/// Named places where the crash tests kill the process, exactly there, with SIGKILL: set
/// `CARDSYNC_CRASH_AT=NAME` (the first time the point is reached) or `NAME:N` (the N-th time).
/// Unset, a point costs one dictionary look-up of the environment at first use, nothing after.
///
/// Delays alone land unevenly on a busy machine; these make "killed between staging and the
/// checkpoint" or "between the ledger's and the projection's commit" a fact, not a hope.
public enum CrashPoint {
    private static let target: (name: String, count: Int)? = {
        guard let raw = getenv("CARDSYNC_CRASH_AT").map({ String(cString: $0) }), !raw.isEmpty else { return nil }
        let parts = raw.split(separator: ":", maxSplits: 1)
        return (String(parts[0]), parts.count > 1 ? Int(parts[1]) ?? 1 : 1)
    }()
    nonisolated(unsafe) private static var reached = 0

    /// Kills the process if this is the point (and the count) the environment names.
    /// Only the thread that runs a sync's or merge's main steps reaches these.
    public static func reach(_ name: String) {
        guard let target, target.name == name else { return }
        reached += 1
        if reached == target.count { kill(getpid(), SIGKILL) }
    }
}
