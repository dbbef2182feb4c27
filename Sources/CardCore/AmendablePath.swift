/// The form fields an `amended` event may change (../shared/spec/queue-format.md).
public enum AmendablePath {
    /// Every changeable path, in the spec's order.
    public static let all: [String] = [
        "child.name", "guardian.name", "guardian.relationship", "guardian.phone",
        "household.register_number", "household.address", "documents",
    ]
    public static let allSet: Set<String> = Set(all)
    /// The only path that may still change once an application is approved.
    public static let changeableAfterApproval: Set<String> = ["guardian.phone"]
}
