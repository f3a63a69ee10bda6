/// Why a YAML file or document cannot be used, with the file and line it concerns.
///
/// The reason describes the problem, never the document's content, so a problem can be
/// logged even when the file holds something sensitive. Modules that read YAML convert it to
/// their own error type at their public boundary.
public struct YAMLProblem: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of problem this is.
    public enum Kind: String, Sendable {
        /// A directory or file could not be listed or read, or is not UTF-8 text.
        case unreadable
        /// The text is not well-formed YAML.
        case syntax
        /// The YAML is well-formed but its content is not what the reader expects.
        case invalid
    }

    /// What kind of problem this is.
    public var kind: Kind
    /// The file (or directory), when the problem comes from one.
    public var file: String?
    /// The 1-based line in `file`, when known.
    public var line: Int?
    /// What is wrong, in words; never contains document content.
    public var reason: String

    /// Creates a problem.
    public init(kind: Kind, file: String? = nil, line: Int? = nil, reason: String) {
        self.kind = kind
        self.file = file
        self.line = line
        self.reason = reason
    }

    /// `rules/x.yaml:12: invalid: unknown key 'foo'`.
    public var description: String {
        var location = ""
        if let file {
            location = file
            if let line { location += ":\(line)" }
            location += ": "
        } else if let line {
            location = "line \(line): "
        }
        return "\(location)\(kind.rawValue): \(reason)"
    }
}

extension YAMLProblem {
    /// The caller's error code for this problem's kind: each module maps the three kinds to
    /// codes of its own error type (`invalid` meaning an invalid rule, playbook or fixture).
    public func code<Code>(unreadable: Code, syntax: Code, invalid: Code) -> Code {
        switch kind {
        case .unreadable: unreadable
        case .syntax: syntax
        case .invalid: invalid
        }
    }
}
