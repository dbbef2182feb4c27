import PostgresClient
import Testing
@testable import CardSync

/// A `SyncError` keeps the error under it, so that whether to try again is decided on the cause,
/// not on words.
@Suite("SyncError keeps its cause")
struct SyncErrorCauseTests {
    @Test("a broken connection under a SyncError is retryable; a refused statement or no cause is not")
    func retryableThroughTheCause() {
        let lost = PostgresError(kind: .connection, message: "server closed the connection unexpectedly")
        let refused = PostgresError(kind: .server, message: "permission denied", sqlState: "42501")
        #expect(SyncError("projection commit lost", cause: lost).isRetryable)
        #expect(SyncError("wrapped twice", cause: SyncError("inner", cause: lost)).isRetryable)
        #expect(!SyncError("no role", cause: refused).isRetryable)
        #expect(!SyncError("words only").isRetryable)
        #expect(SyncRunner.isRetryable(SyncError("x", cause: lost)))
        #expect(SyncRunner.isRetryable(lost))
        #expect(!SyncRunner.isRetryable(refused))
        let kept = SyncError("projection commit lost", cause: refused).cause as? PostgresError
        #expect(kept?.sqlState == "42501")
    }
}
