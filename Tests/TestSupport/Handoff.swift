import Synchronization

/// Hands a value that is not `Sendable` (a `Connection`) to exactly one other thread, which
/// takes it and owns it from then on: the compiler-checked way to give a worker a connection
/// opened on the test's thread.
///
/// ```swift
/// let bureau = Handoff(try world.connect(as: role))
/// Thread { let connection = bureau.take(); … }.start()
/// ```
public final class Handoff<Value>: Sendable {
    private let slot: Mutex<Value?>

    public init(_ value: sending Value) {
        slot = Mutex(value)
    }

    /// The value; only the first call gets it (a second is a test bug and traps).
    public func take() -> sending Value {
        guard let value = slot.withLock({ $0.take() }) else { preconditionFailure("Handoff.take() called twice") }
        return value
    }
}
