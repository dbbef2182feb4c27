/// The kinds of conflict cardsync detects (../shared/spec/lifecycle.md, "Conflicts").
public enum ConflictKind: String, Sendable, CaseIterable, Codable {
    case duplicateApplication = "duplicate_application"
    case concurrentAmendment = "concurrent_amendment"
    case invalidTransition = "invalid_transition"
    case pendingExpired = "pending_expired"
    case eventIdReuse = "event_id_reuse"
}

/// How a conflict was, or may be, resolved.
public enum ConflictOutcome: String, Sendable, CaseIterable, Codable {
    /// `duplicate_application`: one application kept, the others withdrawn.
    case keep
    /// `concurrent_amendment`: the automatic merge stands.
    case accept
    /// `concurrent_amendment`: the losing values replace the winners.
    case applyOther = "apply_other"
    /// The event that could not apply stays unapplied.
    case dismiss
    /// A pending event whose prerequisite arrived after it expired, applied automatically.
    case applied
    /// `concurrent_amendment` merged automatically at detection.
    case autoMerged = "auto_merged"
}
