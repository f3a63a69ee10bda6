/// Why a rule file, a rule or a partial record cannot be used. The one error type of the
/// Detection module.
///
/// The description names the file and line and the problem, never event data: rule files are
/// configuration, but partial records carry event fields that may be sensitive.
public struct RuleError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is; stable, so callers and metrics can switch on it.
    public enum Code: String, Sendable {
        /// A rule directory or file could not be listed or read.
        case unreadableFile = "unreadable_file"
        /// The file is not well-formed YAML.
        case invalidYAML = "invalid_yaml"
        /// The YAML is well-formed but is not a valid rule.
        case invalidRule = "invalid_rule"
        /// Two rules share an id.
        case duplicateRuleID = "duplicate_rule_id"
        /// A record on the partials topic is not a partial.
        case invalidPartial = "invalid_partial"
        /// A rule test fixture (`rules/tests/*.yaml`) is well-formed YAML but not a valid fixture.
        case invalidFixture = "invalid_fixture"
    }

    /// What kind of failure this is.
    public var code: Code
    /// The rule file, when the error comes from one.
    public var file: String?
    /// The 1-based line in `file`, when known.
    public var line: Int?
    /// What is wrong, in words; never contains event data.
    public var reason: String

    /// Creates an error.
    public init(code: Code, file: String? = nil, line: Int? = nil, reason: String) {
        self.code = code
        self.file = file
        self.line = line
        self.reason = reason
    }

    /// Always `false`: a bad rule or record stays bad however often it is read again.
    public var isRetriable: Bool { false }

    /// `rules/x.yaml:12: invalid_rule: unknown key 'foo'`.
    public var description: String {
        var location = ""
        if let file {
            location = file
            if let line { location += ":\(line)" }
            location += ": "
        } else if let line {
            location = "line \(line): "
        }
        return "\(location)\(code.rawValue): \(reason)"
    }
}
