import OCSF

/// Converts Sigma detections into Vigil conditions, field by field, for one log source
/// profile. Pure: no I/O. Anything Vigil cannot express faithfully is an error naming the
/// construct, never dropped.
public struct SigmaConverter: Sendable {
    /// The log source whose field table is used.
    public let profile: SigmaLogSourceProfile

    /// A converter for `profile`.
    public init(profile: SigmaLogSourceProfile) {
        self.profile = profile
    }

    /// The supported profile for a detection's `logsource`, or why there is none.
    public static func profile(for detection: SigmaDetection,
                               among profiles: [SigmaLogSourceProfile] = SigmaLogSourceProfile.supported) throws(RuleError) -> SigmaLogSourceProfile {
        if let match = profiles.first(where: { $0.product == detection.product && $0.service == detection.service }) {
            return match
        }
        let described = [("product", detection.product), ("service", detection.service), ("category", detection.category)]
            .compactMap { key, value in value.map { "\(key)=\($0)" } }.joined(separator: " ")
        let supported = profiles.map { "product=\($0.product) service=\($0.service)" }.joined(separator: "; ")
        throw RuleError(code: .invalidRule, reason: "unsupported logsource \(described.isEmpty ? "(none)" : described) (supported: \(supported))")
    }

    /// The detection's condition as a Vigil condition, and its legacy aggregation if any.
    public func convert(_ detection: SigmaDetection) throws(RuleError) -> (match: Condition, aggregation: SigmaAggregation?) {
        var expressions: [SigmaConditionExpression] = []
        var aggregation: SigmaAggregation?
        for text in detection.conditions {
            let parts = text.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            expressions.append(try SigmaConditionExpression.parse(parts[0]))
            if parts.count == 2 {
                guard detection.conditions.count == 1 else {
                    throw invalid("an aggregation in one of several conditions is not convertible")
                }
                aggregation = try SigmaAggregation.parse(parts[1])
            }
        }
        if aggregation == nil, detection.timeframe != nil {
            throw invalid("'timeframe' without an aggregation correlates separate events in any order (an unordered temporal correlation), which Vigil's ordered sequences cannot express faithfully; not converted")
        }
        var cache: [String: Condition] = [:]
        var conditions: [Condition] = []
        for expression in expressions {
            conditions.append(try condition(expression, detection: detection, cache: &cache))
        }
        return (conditions.count == 1 ? conditions[0] : Self.flatten(.any(conditions)), aggregation)
    }

    /// Converts a condition expression, resolving identifiers and patterns against the searches.
    func condition(_ expression: SigmaConditionExpression, detection: SigmaDetection,
                   cache: inout [String: Condition]) throws(RuleError) -> Condition {
        func search(_ name: String) throws(RuleError) -> Condition {
            if let known = cache[name] { return known }
            guard let definition = detection.searches[name] else {
                throw invalid("condition names '\(name)', which is not a search identifier of the detection")
            }
            let converted = try self.search(definition, name: name)
            cache[name] = converted
            return converted
        }
        func matching(_ pattern: String) throws(RuleError) -> [Condition] {
            let names = detection.searchNames.filter { SigmaConditionExpression.pattern(pattern, matches: $0) }
            guard !names.isEmpty else { throw invalid("condition pattern '\(pattern)' matches no search identifier") }
            var members: [Condition] = []
            for name in names { members.append(try search(name)) }
            return members
        }
        switch expression {
        case .identifier(let name):
            return try search(name)
        case .and(let members):
            var converted: [Condition] = []
            for member in members { converted.append(try condition(member, detection: detection, cache: &cache)) }
            return Self.flatten(.all(converted))
        case .or(let members):
            var converted: [Condition] = []
            for member in members { converted.append(try condition(member, detection: detection, cache: &cache)) }
            return Self.flatten(.any(converted))
        case .not(let member):
            return .not(try condition(member, detection: detection, cache: &cache))
        case .oneOf(let pattern):
            let members = try matching(pattern)
            return members.count == 1 ? members[0] : Self.flatten(.any(members))
        case .allOf(let pattern):
            let members = try matching(pattern)
            return members.count == 1 ? members[0] : Self.flatten(.all(members))
        }
    }

    /// One search identifier: maps are AND-ed fields, lists of maps OR-ed, keywords searched
    /// in the raw message field when the source keeps one.
    func search(_ search: SigmaSearch, name: String) throws(RuleError) -> Condition {
        switch search {
        case .keywords(let values, let all):
            return try keywords(values, all: all, name: name)
        case .fieldMaps(let maps):
            var alternatives: [Condition] = []
            for map in maps {
                var members: [Condition] = []
                for item in map {
                    if item.field.isEmpty {
                        members.append(try keywords(item.values, all: item.modifiers.contains("all"), name: name))
                    } else {
                        members.append(try field(item))
                    }
                }
                alternatives.append(members.count == 1 ? members[0] : Self.flatten(.all(members)))
            }
            return alternatives.count == 1 ? alternatives[0] : Self.flatten(.any(alternatives))
        }
    }

    func keywords(_ values: [JSON], all: Bool, name: String) throws(RuleError) -> Condition {
        guard let raw = profile.rawMessageField else {
            throw invalid("search '\(name)' is a keyword search (values without a field), which needs the raw record text; normalized \(profile.service) events keep none")
        }
        let item = SigmaFieldItem(field: raw, modifiers: all ? ["contains", "all"] : ["contains"], values: values, line: nil)
        return try field(item, target: SigmaFieldMapping.Target([raw]))
    }

    /// The modifiers of one field entry, validated.
    struct Modifiers {
        enum TextMode { case exact, contains, prefix, suffix }
        var text = TextMode.exact
        var all = false
        var regex = false
        var regexFlags: Set<Character> = []
        var cidr = false
        var numeric: FieldTest.Op?
        var exists = false
        var cased = false
        var notEqual = false

        init(_ names: [String], field: String) throws(RuleError) {
            func invalid(_ reason: String) -> RuleError { RuleError(code: .invalidRule, reason: "'\(field)': \(reason)") }
            for name in names {
                switch name {
                case "contains", "startswith", "endswith":
                    guard text == .exact else { throw invalid("more than one of contains, startswith, endswith") }
                    text = name == "contains" ? .contains : name == "startswith" ? .prefix : .suffix
                case "all": all = true
                case "re": regex = true
                case "i", "m", "s":
                    guard regex else { throw invalid("modifier '\(name)' applies only after 're'") }
                    regexFlags.insert(Character(name))
                case "cidr": cidr = true
                case "gt", "gte", "lt", "lte":
                    guard numeric == nil else { throw invalid("more than one numeric comparison") }
                    numeric = FieldTest.Op(rawValue: name)
                case "exists": exists = true
                case "cased": cased = true
                case "neq": notEqual = true
                case "windash", "base64", "base64offset", "utf16le", "utf16be", "utf16", "wide":
                    throw invalid("modifier '\(name)' (an encoding of Windows command lines) is not supported")
                case "expand":
                    throw invalid("modifier 'expand' needs placeholder values from your environment; not supported")
                case "fieldref":
                    throw invalid("modifier 'fieldref' compares two fields of one event; Vigil conditions compare a field with constants")
                case "minute", "hour", "day", "week", "month", "year":
                    throw invalid("time-part modifier '\(name)' is not supported")
                default:
                    throw invalid("unknown modifier '\(name)'")
                }
            }
            let kinds = [text != .exact, regex, cidr, numeric != nil, exists].filter { $0 }.count
            guard kinds <= 1 else { throw invalid("modifiers that cannot be combined") }
        }
    }

    /// One `field|modifiers: values` entry as a condition, through the field table.
    func field(_ item: SigmaFieldItem) throws(RuleError) -> Condition {
        // A modifier Vigil lacks is the more basic problem; name it before the field.
        _ = try Modifiers(item.modifiers, field: ([item.field] + item.modifiers).joined(separator: "|"))
        switch profile.mapping.target(for: item.field) {
        case .success(let target): return try field(item, target: target)
        case .failure(let failure): throw invalid(failure.description)
        }
    }

    /// A value test before it is bound to a path.
    struct ValueTest: Equatable {
        var op: FieldTest.Op
        var values: [JSON]
        var caseInsensitive: Bool
    }

    func field(_ item: SigmaFieldItem, target: SigmaFieldMapping.Target) throws(RuleError) -> Condition {
        let label = ([item.field] + item.modifiers).joined(separator: "|")
        func invalid(_ reason: String) -> RuleError { RuleError(code: .invalidRule, reason: "'\(label)': \(reason)") }
        let modifiers = try Modifiers(item.modifiers, field: label)
        if modifiers.all, item.values.count < 2, !item.field.isEmpty, item.field != profile.rawMessageField {
            throw invalid("'all' needs a list of two or more values")
        }
        var tests: [ValueTest] = []
        for value in item.values {
            tests.append(try valueTest(value, modifiers: modifiers, label: label))
        }
        // OR-ed values of one operator become one test (`in`, `contains` lists).
        var grouped: [ValueTest] = []
        if modifiers.all {
            grouped = tests
        } else {
            for test in tests {
                let mergeable: Set<FieldTest.Op> = [.equals, .in, .prefix, .suffix, .contains, .regex, .cidr]
                if mergeable.contains(test.op),
                   let index = grouped.firstIndex(where: { Self.mergeKey($0.op) == Self.mergeKey(test.op) && mergeable.contains($0.op) }) {
                    grouped[index].values += test.values
                    grouped[index].caseInsensitive = grouped[index].caseInsensitive || test.caseInsensitive
                    if grouped[index].op == .equals { grouped[index].op = .in }
                } else {
                    grouped.append(test)
                }
            }
        }
        var conditions: [Condition] = []
        for test in grouped {
            var perPath: [Condition] = []
            for path in target.paths {
                do {
                    let op = test.op == .in && test.values.count == 1 ? FieldTest.Op.equals : test.op
                    let caseInsensitive = op.isTextual && test.caseInsensitive
                    perPath.append(.field(try FieldTest(path: path, op: op, values: test.values, caseInsensitive: caseInsensitive)))
                } catch {
                    throw invalid(error.reason)
                }
            }
            // A null / absent test must hold at every path a value could be at; any other at one.
            let absent = test.op == .exists && test.values == [.bool(false)]
            conditions.append(perPath.count == 1 ? perPath[0] : (absent ? .all(perPath) : .any(perPath)))
        }
        let combined = conditions.count == 1 ? conditions[0] : Self.flatten(modifiers.all ? .all(conditions) : .any(conditions))
        return modifiers.notEqual ? .not(combined) : combined
    }

    static func mergeKey(_ op: FieldTest.Op) -> FieldTest.Op { op == .equals ? .in : op }

    /// One Sigma value under the entry's modifiers.
    func valueTest(_ value: JSON, modifiers: Modifiers, label: String) throws(RuleError) -> ValueTest {
        func invalid(_ reason: String) -> RuleError { RuleError(code: .invalidRule, reason: "'\(label)': \(reason)") }
        if modifiers.exists {
            guard let wanted = value.boolValue ?? (value.stringValue == "true" ? true : value.stringValue == "false" ? false : nil) else {
                throw invalid("'exists' takes true or false")
            }
            return ValueTest(op: .exists, values: [.bool(wanted)], caseInsensitive: false)
        }
        if value == .null {
            guard modifiers.text == .exact, !modifiers.regex, !modifiers.cidr, modifiers.numeric == nil else {
                throw invalid("null cannot be combined with a modifier")
            }
            return ValueTest(op: .exists, values: [.bool(false)], caseInsensitive: false)
        }
        if let op = modifiers.numeric {
            guard let number = value.doubleValue ?? value.stringValue.flatMap(Double.init), number.isFinite else {
                throw invalid("'\(op.rawValue)' needs a number")
            }
            return ValueTest(op: op, values: [Self.number(number)], caseInsensitive: false)
        }
        if modifiers.cidr {
            guard let text = value.stringValue else { throw invalid("'cidr' needs a network such as 10.0.0.0/8") }
            return ValueTest(op: .cidr, values: [.string(text)], caseInsensitive: false)
        }
        if modifiers.regex {
            guard var pattern = value.stringValue else { throw invalid("'re' needs a pattern") }
            let inline = modifiers.regexFlags.subtracting(["i"]).sorted()
            if !inline.isEmpty { pattern = "(?" + String(inline) + ")" + pattern }
            // Sigma regular expressions are case-sensitive unless `|i`.
            return ValueTest(op: .regex, values: [.string(pattern)], caseInsensitive: modifiers.regexFlags.contains("i"))
        }
        guard case .string(let text) = value else {
            guard let text = value.scalarText else { throw invalid("values must be strings, numbers or booleans") }
            // Numbers and booleans compare by their plain text, as Vigil's `equals` does.
            if modifiers.text == .exact { return ValueTest(op: .equals, values: [value], caseInsensitive: false) }
            return try wildcardTest(SigmaWildcard.literal(text), modifiers: modifiers)
        }
        return try wildcardTest(SigmaWildcard.parse(text), modifiers: modifiers)
    }

    /// A string value's wildcard pattern (after `contains` / `startswith` / `endswith`) as the
    /// cheapest Vigil operator that means the same: equals, contains, prefix, suffix, exists,
    /// else an anchored regular expression. Sigma compares strings ignoring case unless `cased`.
    func wildcardTest(_ pattern: [SigmaWildcard], modifiers: Modifiers) throws(RuleError) -> ValueTest {
        var segments = pattern
        switch modifiers.text {
        case .exact: break
        case .contains: segments = [.any] + segments + [.any]
        case .prefix: segments = segments + [.any]
        case .suffix: segments = [.any] + segments
        }
        segments = SigmaWildcard.normalized(segments)
        let literalText = segments.compactMap { if case .literal(let text) = $0 { text } else { nil } }.joined()
        let caseInsensitive = !modifiers.cased && literalText.lowercased() != literalText.uppercased()
        func test(_ op: FieldTest.Op, _ value: JSON, _ caseInsensitive: Bool) -> ValueTest {
            ValueTest(op: op, values: [value], caseInsensitive: caseInsensitive)
        }
        let wild = segments.map { $0 == .any }
        let literals = segments.compactMap { piece -> String? in if case .literal(let text) = piece { text } else { nil } }
        switch (segments.count, literals.count) {
        case (0, _): return test(.equals, "", false)
        case (1, 1): return test(.equals, .string(literals[0]), caseInsensitive)
        case (1, 0) where wild == [true]: return test(.exists, true, false)
        case (3, 1) where wild == [true, false, true]: return test(.contains, .string(literals[0]), caseInsensitive)
        case (2, 1) where wild == [false, true]: return test(.prefix, .string(literals[0]), caseInsensitive)
        case (2, 1) where wild == [true, false]: return test(.suffix, .string(literals[0]), caseInsensitive)
        default: return test(.regex, .string(SigmaWildcard.regex(segments)), caseInsensitive)
        }
    }

    /// An integral double as an integer, so the YAML written reads back as the same value.
    static func number(_ value: Double) -> JSON {
        if value.rounded() == value, abs(value) < 1e15 { return .int(Int64(value)) }
        return .double(value)
    }

    /// Nested `all` in `all` (and `any` in `any`) merged, for shorter rules.
    static func flatten(_ condition: Condition) -> Condition {
        switch condition {
        case .all(let members):
            return .all(members.flatMap { member -> [Condition] in if case .all(let inner) = member { inner } else { [member] } })
        case .any(let members):
            return .any(members.flatMap { member -> [Condition] in if case .any(let inner) = member { inner } else { [member] } })
        default:
            return condition
        }
    }

    func invalid(_ reason: String) -> RuleError { RuleError(code: .invalidRule, reason: reason) }
}

/// A piece of a Sigma string value: literal text or a wildcard (`*` any run, `?` one character).
/// `\*`, `\?` and `\\` are the escaped characters; any other backslash is literal.
public enum SigmaWildcard: Sendable, Equatable {
    /// Literal text.
    case literal(String)
    /// `*`.
    case any
    /// `?`.
    case one

    /// The pieces of `text`.
    public static func parse(_ text: String) -> [SigmaWildcard] {
        var pieces: [SigmaWildcard] = []
        var literal = ""
        var characters = text.makeIterator()
        var pending: Character? = characters.next()
        func flush() { if !literal.isEmpty { pieces.append(.literal(literal)); literal = "" } }
        while let character = pending {
            pending = characters.next()
            switch character {
            case "\\":
                if let next = pending, next == "*" || next == "?" || next == "\\" {
                    literal.append(next)
                    pending = characters.next()
                } else {
                    literal.append("\\")
                }
            case "*": flush(); pieces.append(.any)
            case "?": flush(); pieces.append(.one)
            default: literal.append(character)
            }
        }
        flush()
        return pieces
    }

    /// A value with no wildcards at all (numbers, booleans under `contains`).
    static func literal(_ text: String) -> [SigmaWildcard] { text.isEmpty ? [] : [.literal(text)] }

    /// Adjacent literals joined and runs of `*` collapsed.
    static func normalized(_ pieces: [SigmaWildcard]) -> [SigmaWildcard] {
        var result: [SigmaWildcard] = []
        for piece in pieces {
            switch (result.last, piece) {
            case (.literal(let a)?, .literal(let b)): result[result.count - 1] = .literal(a + b)
            case (.any?, .any): continue
            case (_, .literal(let text)) where text.isEmpty: continue
            default: result.append(piece)
            }
        }
        return result
    }

    /// An anchored regular expression for the pieces; `(?s)` so `*` spans line breaks too.
    static func regex(_ pieces: [SigmaWildcard]) -> String {
        var pattern = "(?s)^"
        for piece in pieces {
            switch piece {
            case .any: pattern += ".*"
            case .one: pattern += "."
            case .literal(let text):
                for character in text {
                    if "\\^$.|?*+()[]{}".contains(character) { pattern.append("\\") }
                    pattern.append(character)
                }
            }
        }
        return pattern + "$"
    }
}
