/// Why a playbook file or playbook cannot be used. The one error type of the Response module.
///
/// The description names the file and line and the problem, never alert data.
public struct PlaybookError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is; stable, so callers and metrics can switch on it.
    public enum Code: String, Sendable {
        /// A playbook directory or file could not be listed or read.
        case unreadableFile = "unreadable_file"
        /// The file is not well-formed YAML.
        case invalidYAML = "invalid_yaml"
        /// The YAML is well-formed but is not a valid playbook.
        case invalidPlaybook = "invalid_playbook"
        /// Two playbooks share an id.
        case duplicatePlaybookID = "duplicate_playbook_id"
    }

    /// What kind of failure this is.
    public var code: Code
    /// The playbook file, when the error comes from one.
    public var file: String?
    /// The 1-based line in `file`, when known.
    public var line: Int?
    /// What is wrong, in words.
    public var reason: String

    /// Creates an error.
    public init(code: Code, file: String? = nil, line: Int? = nil, reason: String) {
        self.code = code
        self.file = file
        self.line = line
        self.reason = reason
    }

    /// Always `false`: a bad playbook stays bad however often it is read again.
    public var isRetriable: Bool { false }

    /// `playbooks/x.yaml:7: invalid_playbook: unknown key 'foo'`.
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
