import CardCore
import Foundation
import PostgresClient

/// One agency queue opened against the central database, by sync and by reconcile alike: the
/// sequence both must follow to touch a queue, in one place.
///
/// Opening reads the queue's agency, takes the queue's lock (no other process writes its
/// sync-owned files) and the centre's per-agency lock (no other sync or reconcile of the same
/// agency, wherever it runs), and asks which role the session has: an agency's own role may
/// only open its own queue. Appending to the inbox goes through `openInbox` and `commitInbox`,
/// which cut a crashed run's uncommitted appends first and, after the appends, move the local
/// checkpoint and then the centre's cursor, in that order (a crash in between re-pulls and the
/// inbox is cut back, so nothing is written twice).
final class QueueSession {
    let queue: QueueDirectory
    let agency: Agency
    let role: SessionRole
    /// The centre as this agency sees it (the checked functions).
    let centre: AgencyFunctions
    private let connection: Connection
    private var lock: QueueLock?

    /// Opens `queue`, waiting up to `lockWait` for a sync or reconcile of it to finish.
    init(queue: QueueDirectory, connection: Connection, lockWait: Duration?) throws {
        let agency = try queue.readAgency()
        let lock = try QueueLock.acquire(queue, timeout: lockWait)
        do {
            try MergeLocks.lockAgency(agency.code, on: connection, wait: lockWait)
        } catch {
            lock.release()
            throw error
        }
        do {
            role = try SessionRole.of(connection)
            if case .agency(let own) = role, own != agency.code {
                throw SyncError.roleOfOtherAgency(role: own, queue: agency.code)
            }
        } catch {
            MergeLocks.unlockAgency(agency.code, on: connection)
            lock.release()
            throw error
        }
        self.queue = queue
        self.agency = agency
        self.connection = connection
        self.lock = lock
        centre = AgencyFunctions(connection: connection, agency: agency.code)
    }

    /// Releases both locks (also when the run failed). Idempotent.
    func close() {
        guard let lock else { return }
        self.lock = nil
        MergeLocks.unlockAgency(agency.code, on: connection)
        lock.release()
    }

    deinit { close() }

    /// The inbox, opened for appending after what the checkpoint covers: appends of a run that
    /// died before its checkpoint are cut first.
    func openInbox(after checkpoint: SyncCheckpoint) throws -> InboxWriter {
        let inbox = try InboxWriter(url: queue.inboxFile)
        do {
            if try inbox.size() > checkpoint.inboxSize { try inbox.truncate(toSize: checkpoint.inboxSize) }
        } catch {
            inbox.close()
            throw error
        }
        return inbox
    }

    /// Makes the appends since the last commit durable, then records them: the checkpoint's
    /// inbox size and pull cursor (`through`) first, the centre's cursor (`centreCursor`,
    /// default the same) after.
    func commitInbox(_ inbox: InboxWriter, through cursor: Int64, centreCursor: Int64? = nil,
                     checkpoint: inout SyncCheckpoint, now: Timestamp) throws {
        try inbox.flush()
        checkpoint.inboxSize = try inbox.size()
        checkpoint.pulledDelivery = cursor
        checkpoint.updatedAt = now
        try queue.saveCheckpoint(checkpoint)
        try centre.recordPull(through: centreCursor ?? cursor)
    }
}
