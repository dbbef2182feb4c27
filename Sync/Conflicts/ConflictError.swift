import CardCore
import Foundation

/// Why a conflict could not be shown or resolved. Each says what went wrong, that nothing was
/// changed, and what to do instead.
public struct ConflictError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        /// No conflict has this id.
        case notFound = "not_found"
        /// A person (or cardsync, for a final automatic outcome) already resolved it.
        case alreadyResolved = "already_resolved"
        /// The decision is for another kind of conflict.
        case decisionDoesNotFitKind = "decision_does_not_fit_kind"
        /// `--keep APP` with an application the conflict does not name.
        case applicationNotInConflict = "application_not_in_conflict"
        /// Keeping that application would break the one-open-application-per-child rule.
        case cannotKeep = "cannot_keep"
        /// The losing values cannot be applied in the application's current status.
        case cannotApplyOther = "cannot_apply_other"
        /// `by` is empty.
        case missingResolver = "missing_resolver"
    }

    public var code: Code
    public var message: String
    /// What to do instead.
    public var hint: String?

    public init(_ code: Code, _ message: String, hint: String? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
    }

    public var description: String { message }

    static func notFound(_ id: Int64) -> ConflictError {
        ConflictError(.notFound, "conflict \(id) does not exist",
                      hint: "cardsync conflicts list --status all lists every conflict")
    }
}
