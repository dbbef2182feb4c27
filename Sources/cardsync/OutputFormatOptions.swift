import ArgumentParser

/// The output formats of a command whose result is either text for people or one JSON document.
enum TextOrJSON: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// `--format text|json` and its shorthand `--json`, shared by every command that can print its
/// result as JSON (docs/cli.md, "Output formats").
///
/// One scheme everywhere: `--format F` names the format, as the contract's `conflicts list` and
/// `report` do, and `--json`, which the contract names on `sync`, `status`, `reconcile`, `db roles`
/// and `agency credentials`, is kept on every such command as the same thing as `--format json`, so
/// a clerk who learnt one spelling on one command can use it on all of them.
struct OutputFormatOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Output format: text (default) or json.", valueName: "FORMAT"))
    var format: TextOrJSON?
    @Flag(help: "The same as --format json: one JSON document on stdout, nothing else there.")
    var json = false

    func validate() throws {
        if json, let format, format != .json {
            throw ValidationError("--json and --format \(format.rawValue) contradict each other: --json is short for --format json")
        }
    }

    /// Whether to print JSON (`--json` or `--format json`).
    var isJSON: Bool { json || format == .json }
}
