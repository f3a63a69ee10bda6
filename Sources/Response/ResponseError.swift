/// Why a playbook cannot be used, or a command cannot be carried out. The one error type of
/// the Response module.
///
/// The description names the file and line (playbooks), the AWS error code (actions) and the
/// problem, never alert data, webhook URLs or credentials.
public struct ResponseError: Error, Sendable, Equatable, CustomStringConvertible {
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
        /// A command record is not a command (missing id, unknown action).
        case invalidCommand = "invalid_command"
        /// The ledger database could not be opened, read or written.
        case ledgerFailed = "ledger_failed"
        /// The command, or what it acts on, does not exist.
        case notFound = "not_found"
        /// The action needs configuration that is missing (a webhook URL, AWS credentials).
        case notConfigured = "not_configured"
        /// The target carries the `vigil:protected` tag; the executor refuses to act.
        case protectedTarget = "protected_target"
        /// AWS refused or failed the call; `awsCode` says how.
        case awsFailed = "aws_failed"
        /// The webhook did not accept the notification.
        case webhookFailed = "webhook_failed"
        /// The command cannot go from its current state to the one asked (approve a command
        /// that is not pending, revert one that did not succeed).
        case invalidState = "invalid_state"
    }

    /// What kind of failure this is.
    public var code: Code
    /// The playbook file, when the error comes from one.
    public var file: String?
    /// The 1-based line in `file`, when known.
    public var line: Int?
    /// What is wrong, in words.
    public var reason: String
    /// The AWS error code (`InvalidInstanceID.NotFound`, `Throttling`), for AWS failures.
    public var awsCode: String?
    /// Whether the same call may succeed later (throttling, 5xx, network).
    public var isRetriable: Bool

    /// Creates an error.
    public init(code: Code, file: String? = nil, line: Int? = nil, reason: String, awsCode: String? = nil, isRetriable: Bool = false) {
        self.code = code
        self.file = file
        self.line = line
        self.reason = reason
        self.awsCode = awsCode
        self.isRetriable = isRetriable
    }

    /// `playbooks/x.yaml:7: invalid_playbook: unknown key 'foo'`, `aws_failed: ... [InvalidInstanceID.NotFound]`.
    public var description: String {
        var location = ""
        if let file {
            location = file
            if let line { location += ":\(line)" }
            location += ": "
        } else if let line {
            location = "line \(line): "
        }
        var text = "\(location)\(code.rawValue): \(reason)"
        if let awsCode { text += " [\(awsCode)]" }
        return text
    }
}
