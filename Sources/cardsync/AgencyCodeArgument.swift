import ArgumentParser
import CardCore

extension AgencyCode {
    /// For `@Option(transform:)` / `@Argument(transform:)`: a code typed on the command line,
    /// refused with the rule (a usage error, exit 64) when it does not follow it.
    static func argument(_ text: String) throws -> AgencyCode {
        guard let code = AgencyCode(text) else { throw ValidationError(problem(text)) }
        return code
    }
}
