/// Advisory lock keys shared by every cardsync process that touches the central database.
public enum MergeLocks {
    /// Held (transaction-scoped) while events are applied: ledger, delivery and conflict ids are
    /// handed out under it, so id order is apply order and commit order, and concurrent syncs
    /// of one child's duplicate submissions see each other.
    public static let merge: Int64 = 0x6361_7264_6D65_7267 // "cardmerg"
    /// First key of the session-scoped per-agency sync lock; the second is `hashtext(code)`.
    public static let agencySyncClass: Int32 = 0x6361_7264 // "card"
}
