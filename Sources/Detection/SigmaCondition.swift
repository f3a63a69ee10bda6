/// A Sigma `condition` expression over search identifiers: `selection and not 1 of filter*`.
///
/// Precedence, loosest first: `or`, `and`, `not`, `1 of` / `all of`, parentheses. Keywords are
/// matched case-insensitively; identifiers and patterns are kept as written.
public indirect enum SigmaConditionExpression: Sendable, Equatable {
    /// A search identifier (`selection`).
    case identifier(String)
    /// Every member holds.
    case and([SigmaConditionExpression])
    /// At least one member holds.
    case or([SigmaConditionExpression])
    /// The member does not hold.
    case not(SigmaConditionExpression)
    /// At least one identifier matching the pattern holds (`1 of sel*`); `them` is every
    /// identifier not starting with `_`.
    case oneOf(pattern: String)
    /// Every identifier matching the pattern holds (`all of filter_*`, `all of them`).
    case allOf(pattern: String)

    /// Parses a condition without an aggregation part.
    ///
    /// - Throws: `RuleError` (`invalid_rule`, no file) naming the problem and its position.
    public static func parse(_ text: String) throws(RuleError) -> SigmaConditionExpression {
        var parser = SigmaConditionParser(tokens: try SigmaConditionParser.tokenize(text))
        let expression = try parser.expression()
        if let extra = parser.peek {
            throw RuleError(code: .invalidRule, reason: "condition: unexpected '\(extra.text)' after a complete expression")
        }
        return expression
    }

    /// Whether `name` matches a `1 of` / `all of` pattern: `*` stands for any characters;
    /// `them` matches every identifier that does not start with `_`.
    public static func pattern(_ pattern: String, matches name: String) -> Bool {
        if pattern == "them" { return !name.hasPrefix("_") }
        let parts = pattern.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        guard parts.count > 1 else { return pattern == name }
        var rest = Substring(name)
        guard rest.hasPrefix(parts[0]) else { return false }
        rest = rest.dropFirst(parts[0].count)
        for (index, part) in parts.enumerated().dropFirst() {
            if index == parts.count - 1 { return rest.hasSuffix(part) }
            guard let range = rest.firstRange(of: part) else { return false }
            rest = rest[range.upperBound...]
        }
        return true
    }
}

/// The legacy (Sigma 1) aggregation after a condition's `|`: `count(field) by group > 5`.
/// Sigma 2 replaced it with correlation rules; SigmaHQ still ships rules that use it.
public struct SigmaAggregation: Sendable, Equatable {
    /// `count`, `sum`, `min`, `max` or `avg`.
    public var function: String
    /// The aggregated field; for `count` the field whose distinct values are counted, if any.
    public var field: String?
    /// The `by` field, if any.
    public var groupBy: String?
    /// `>`, `>=`, `<`, `<=` or `==` (`=` is read as `==`).
    public var op: String
    /// The compared number.
    public var value: Double

    /// An aggregation.
    public init(function: String, field: String?, groupBy: String?, op: String, value: Double) {
        self.function = function
        self.field = field
        self.groupBy = groupBy
        self.op = op
        self.value = value
    }

    /// Parses the part after `|`: `count() > 5`, `count(User) by Host >= 10`. `near` and
    /// anything else is rejected with a reason.
    public static func parse(_ text: String) throws(RuleError) -> SigmaAggregation {
        func invalid(_ reason: String) -> RuleError { RuleError(code: .invalidRule, reason: reason) }
        let trimmed = text.trimmingWhitespace()
        if trimmed.lowercased().hasPrefix("near") {
            throw invalid("the 'near' aggregation (searches matching close in time, in any order) is an unordered temporal correlation, which Vigil's ordered sequences cannot express faithfully; not converted")
        }
        guard let open = trimmed.firstIndex(of: "("), let close = trimmed.firstIndex(of: ")"), open < close else {
            throw invalid("aggregation must look like 'count(field) by group > 5'")
        }
        let function = String(trimmed[..<open]).trimmingWhitespace().lowercased()
        guard ["count", "sum", "min", "max", "avg"].contains(function) else {
            throw invalid("unknown aggregation function '\(function)'")
        }
        let field = String(trimmed[trimmed.index(after: open)..<close]).trimmingWhitespace()
        var rest = String(trimmed[trimmed.index(after: close)...]).trimmingWhitespace()
        var groupBy: String?
        if rest.lowercased().hasPrefix("by ") {
            rest = String(rest.dropFirst(3)).trimmingWhitespace()
            let name = rest.prefix { !$0.isWhitespace && !"<>=".contains($0) }
            guard !name.isEmpty else { throw invalid("aggregation 'by' needs a field") }
            groupBy = String(name)
            rest = String(rest.dropFirst(name.count)).trimmingWhitespace()
        }
        var op = ""
        for candidate in [">=", "<=", "==", ">", "<", "="] where rest.hasPrefix(candidate) {
            op = candidate == "=" ? "==" : candidate
            rest = String(rest.dropFirst(candidate.count)).trimmingWhitespace()
            break
        }
        guard !op.isEmpty, let value = Double(rest), value.isFinite else {
            throw invalid("aggregation must end with a comparison such as '> 5'")
        }
        if function != "count", field.isEmpty { throw invalid("aggregation '\(function)' needs a field") }
        return SigmaAggregation(function: function, field: field.isEmpty ? nil : field, groupBy: groupBy, op: op, value: value)
    }
}

/// Recursive descent over the condition's tokens.
struct SigmaConditionParser {
    struct Token: Equatable {
        enum Kind: Equatable { case open, close, word }
        var kind: Kind
        var text: String
        var offset: Int
    }

    var tokens: [Token]
    var position = 0
    /// Open parentheses and `not`s around the current token; bounded so a hostile condition
    /// cannot exhaust the stack.
    var depth = 0
    static let maximumDepth = 64

    var peek: Token? { position < tokens.count ? tokens[position] : nil }

    static func tokenize(_ text: String) throws(RuleError) -> [Token] {
        var tokens: [Token] = []
        var word = ""
        var wordStart = 0
        func flush() {
            if !word.isEmpty { tokens.append(Token(kind: .word, text: word, offset: wordStart)) }
            word = ""
        }
        for (offset, character) in text.enumerated() {
            switch character {
            case "(": flush(); tokens.append(Token(kind: .open, text: "(", offset: offset))
            case ")": flush(); tokens.append(Token(kind: .close, text: ")", offset: offset))
            case _ where character.isWhitespace: flush()
            case _ where character.isLetter || character.isNumber || "_-.*".contains(character):
                if word.isEmpty { wordStart = offset }
                word.append(character)
            default:
                throw RuleError(code: .invalidRule, reason: "condition: unexpected character '\(character)' at offset \(offset)")
            }
        }
        flush()
        guard !tokens.isEmpty else { throw RuleError(code: .invalidRule, reason: "condition is empty") }
        return tokens
    }

    static func isKeyword(_ token: Token, _ keyword: String) -> Bool {
        token.kind == .word && token.text.lowercased() == keyword
    }

    mutating func next() -> Token? {
        defer { position += 1 }
        return peek
    }

    mutating func enter() throws(RuleError) {
        depth += 1
        guard depth <= Self.maximumDepth else {
            throw RuleError(code: .invalidRule, reason: "condition: nests more than \(Self.maximumDepth) levels deep")
        }
    }

    /// or-expression := and-expression ('or' and-expression)*
    mutating func expression() throws(RuleError) -> SigmaConditionExpression {
        var members = [try conjunction()]
        while let token = peek, Self.isKeyword(token, "or") {
            position += 1
            members.append(try conjunction())
        }
        return members.count == 1 ? members[0] : .or(members)
    }

    /// and-expression := unary ('and' unary)*
    mutating func conjunction() throws(RuleError) -> SigmaConditionExpression {
        var members = [try unary()]
        while let token = peek, Self.isKeyword(token, "and") {
            position += 1
            members.append(try unary())
        }
        return members.count == 1 ? members[0] : .and(members)
    }

    /// unary := 'not' unary | primary
    mutating func unary() throws(RuleError) -> SigmaConditionExpression {
        if let token = peek, Self.isKeyword(token, "not") {
            position += 1
            try enter()
            defer { depth -= 1 }
            return .not(try unary())
        }
        return try primary()
    }

    /// primary := '(' expression ')' | ('1' | 'all') 'of' pattern | identifier
    mutating func primary() throws(RuleError) -> SigmaConditionExpression {
        func invalid(_ reason: String) -> RuleError { RuleError(code: .invalidRule, reason: "condition: \(reason)") }
        guard let token = next() else { throw invalid("ends where an identifier or '(' was expected") }
        switch token.kind {
        case .open:
            try enter()
            defer { depth -= 1 }
            let inner = try expression()
            guard let close = next(), close.kind == .close else { throw invalid("'(' at offset \(token.offset) is not closed") }
            return inner
        case .close:
            throw invalid("unexpected ')' at offset \(token.offset)")
        case .word:
            if let following = peek, Self.isKeyword(following, "of") {
                position += 1
                guard let pattern = next(), pattern.kind == .word,
                      !["and", "or", "not", "of"].contains(pattern.text.lowercased())
                else { throw invalid("'\(token.text) of' needs an identifier pattern or 'them'") }
                let quantifier = token.text.lowercased()
                let name = pattern.text.lowercased() == "them" ? "them" : pattern.text
                if quantifier == "1" || quantifier == "any" { return .oneOf(pattern: name) }
                if quantifier == "all" { return .allOf(pattern: name) }
                throw invalid("only '1 of' and 'all of' are defined, not '\(token.text) of'")
            }
            guard !["and", "or", "not", "of"].contains(token.text.lowercased()) else {
                throw invalid("unexpected '\(token.text)' at offset \(token.offset)")
            }
            guard !token.text.contains("*") else {
                throw invalid("wildcard '\(token.text)' is only allowed after '1 of' or 'all of'")
            }
            return .identifier(token.text)
        }
    }
}
