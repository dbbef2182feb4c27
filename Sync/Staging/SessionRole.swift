import PostgresClient

/// Which of the bureau's roles a session logged in with, as far as a sync cares: an agency's
/// own role stages its events for the bureau's merge; the owner and the bureau's roles apply
/// them in-process (cli.md, "Who may do what").
public enum SessionRole: Sendable, Equatable {
    /// An agency's login role, acting for `agency` only.
    case agency(String)
    /// The schema owner or a member of `cardsync_bureau` / `cardsync_merge`.
    case bureau

    /// Asks the database (`cardsync.session_agency()`); a role that may call neither agency nor
    /// bureau functions gets an error that names it.
    public static func of(_ connection: Connection) throws -> SessionRole {
        do {
            let rows = try connection.query("SELECT cardsync.session_agency() AS agency")
            if let code = try rows.first?.decode(String?.self, column: "agency") { return .agency(code) }
            return .bureau
        } catch let error as PostgresError where error.sqlState == "42501" {
            throw SyncError("this database role is neither an agency's own role nor one of the bureau's (\(error.message)); "
                + "connect with the role printed by cardsync agency credentials, or ask the bureau to run cardsync db roles",
                cause: error)
        }
    }
}
