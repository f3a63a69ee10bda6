import OCSF

/// Whether `event` satisfies `condition`.
///
/// Field semantics (docs/rules.md): a missing or null field fails every operator except
/// `exists: false`; when the field is an array, the test passes if any element passes.
public func evaluate(_ condition: Condition, on event: JSON) -> Bool {
    switch condition {
    case .all(let members): members.allSatisfy { evaluate($0, on: event) }
    case .any(let members): members.contains { evaluate($0, on: event) }
    case .not(let member): !evaluate(member, on: event)
    case .field(let test): test.matches(event)
    }
}

extension Condition {
    /// Whether `event` satisfies this condition; same as `evaluate(self, on: event)`.
    public func matches(_ event: JSON) -> Bool { evaluate(self, on: event) }
}

extension FieldTest {
    /// Whether the field of `event` at `path` passes this test.
    public func matches(_ event: JSON) -> Bool {
        compiled.matches(field: value(in: event))
    }
}

/// A condition compiled for the select step: its field paths interned in the selector's
/// ``FieldPaths``, so it reads an event through the event's ``EventFields`` cache. Gives
/// exactly the result of ``evaluate(_:on:)`` for the condition it was made from.
indirect enum CompiledCondition: Sendable {
    case all([CompiledCondition])
    case any([CompiledCondition])
    case not(CompiledCondition)
    case field(CompiledField)

    init(_ condition: Condition, paths: inout FieldPaths.Builder) {
        switch condition {
        case .all(let members): self = .all(members.map { CompiledCondition($0, paths: &paths) })
        case .any(let members): self = .any(members.map { CompiledCondition($0, paths: &paths) })
        case .not(let member): self = .not(CompiledCondition(member, paths: &paths))
        case .field(let test): self = .field(CompiledField(node: paths.node(components: test.components), test: test.compiled))
        }
    }

    func matches(_ fields: inout EventFields) -> Bool {
        switch self {
        case .all(let members):
            for member in members where !member.matches(&fields) { return false }
            return true
        case .any(let members):
            for member in members where member.matches(&fields) { return true }
            return false
        case .not(let member):
            return !member.matches(&fields)
        case .field(let field):
            return field.test.matches(field: fields.value(field.node))
        }
    }
}

/// A field test of a ``CompiledCondition``: the node of its path and its compiled operands,
/// behind one reference so evaluating it copies nothing.
final class CompiledField: Sendable {
    let node: Int
    let test: CompiledTest

    init(node: Int, test: CompiledTest) {
        self.node = node
        self.test = test
    }
}

extension FieldTest {
    /// The value at `path` in `event`, as `event.value(at: path)` finds it (an object member by
    /// name, an array element by a number component), from the components split at init.
    func value(in event: JSON) -> JSON? {
        var current = event
        for component in components {
            switch current {
            case .object(let members):
                guard let next = members[component] else { return nil }
                current = next
            case .array(let items):
                guard let index = Int(component), items.indices.contains(index) else { return nil }
                current = items[index]
            default:
                return nil
            }
        }
        return current
    }
}

/// A field test's operands prepared for fast evaluation.
enum CompiledTest: Sendable {
    /// `integers`: the operands that are the canonical text of an integer, as integers, so an
    /// integer field (`class_uid`, `status_id`, ports) is compared without being formatted:
    /// `String(i)` equals an operand exactly when `i` is that operand's integer.
    case texts(FieldTest.Op, [String], caseInsensitive: Bool, integers: [Int64])
    case regexes([CompiledRegex])
    case networks([IPNetwork])
    case number(FieldTest.Op, JSON)
    case exists(Bool)

    init(op: FieldTest.Op, values: [JSON], caseInsensitive: Bool) throws(RuleError) {
        func invalid(_ reason: String) -> RuleError { RuleError(code: .invalidRule, reason: reason) }
        switch op {
        case .equals, .in, .prefix, .suffix, .contains:
            var texts: [String] = []
            for value in values {
                guard let text = value.scalarText else { throw invalid("'\(op.rawValue)' values must be strings, numbers or booleans") }
                texts.append(caseInsensitive ? text.lowercased() : text)
            }
            let integers = texts.compactMap { text in Int64(text).flatMap { String($0) == text ? $0 : nil } }
            self = .texts(op, texts, caseInsensitive: caseInsensitive, integers: integers)
        case .regex:
            var regexes: [CompiledRegex] = []
            for value in values {
                guard let pattern = value.stringValue else { throw invalid("'regex' values must be strings") }
                guard let regex = CompiledRegex(pattern: pattern, caseInsensitive: caseInsensitive) else {
                    throw invalid("'regex' value is not a valid regular expression")
                }
                regexes.append(regex)
            }
            self = .regexes(regexes)
        case .cidr:
            var networks: [IPNetwork] = []
            for value in values {
                guard let text = value.stringValue else { throw invalid("'cidr' values must be strings") }
                switch IPNetwork.parse(text) {
                case .success(let network): networks.append(network)
                case .failure(let problem): throw invalid("'cidr' value is not a valid network: \(problem.rawValue)")
                }
            }
            self = .networks(networks)
        case .gt, .gte, .lt, .lte:
            guard let value = values.first, value.doubleValue != nil else {
                throw invalid("'\(op.rawValue)' needs a number")
            }
            self = .number(op, value)
        case .exists:
            guard let wanted = values.first?.boolValue else { throw invalid("'exists' takes true or false") }
            self = .exists(wanted)
        }
    }

    /// Whether a field whose value is `value` (`nil`: absent) passes: `exists` tests presence,
    /// every other test fails on a missing or null field, and an array passes when an element
    /// does.
    func matches(field value: JSON?) -> Bool {
        if case .exists(let wanted) = self {
            let present = value != nil && value != .null
            return present == wanted
        }
        guard let value, value != .null else { return false }
        if case .array(let items) = value {
            return items.contains { matches($0) }
        }
        return matches(value)
    }

    /// Whether one scalar field value passes.
    func matches(_ value: JSON) -> Bool {
        switch self {
        case .texts(let op, let operands, let caseInsensitive, let integers):
            if case .int(let number) = value, op == .equals || op == .in {
                return integers.contains(number)
            }
            guard var text = value.scalarText else { return false }
            if caseInsensitive { text = text.lowercased() }
            switch op {
            case .equals, .in: return operands.contains(text)
            case .prefix: return operands.contains { text.hasPrefix($0) }
            case .suffix: return operands.contains { text.hasSuffix($0) }
            default: return operands.contains { text.contains($0) }
            }
        case .regexes(let regexes):
            guard let text = value.scalarText else { return false }
            return regexes.contains { $0.matches(text) }
        case .networks(let networks):
            guard let text = value.stringValue else { return false }
            if let number = IPAddress.v4Number(text) { return networks.contains { $0.contains(v4: number) } }
            guard let address = IPAddress(text) else { return false }
            return networks.contains { $0.contains(address) }
        case .number(let op, let operand):
            return CompiledTest.compare(value, op, operand)
        case .exists:
            return true
        }
    }

    /// Numeric comparison: exact on two integers, in doubles otherwise. Strings holding a
    /// number count as that number (some sources quote ports and sizes).
    static func compare(_ value: JSON, _ op: FieldTest.Op, _ operand: JSON) -> Bool {
        var field = value
        if case .string(let text) = value {
            if let integer = Int64(text) { field = .int(integer) }
            else if let double = Double(text), double.isFinite, text.contains(where: \.isNumber) { field = .double(double) }
            else { return false }
        }
        let order: Int
        if case .int(let a) = field, case .int(let b) = operand {
            order = a < b ? -1 : (a == b ? 0 : 1)
        } else {
            guard let a = field.doubleValue, let b = operand.doubleValue, !a.isNaN else { return false }
            order = a < b ? -1 : (a == b ? 0 : 1)
        }
        switch op {
        case .gt: return order > 0
        case .gte: return order >= 0
        case .lt: return order < 0
        case .lte: return order <= 0
        default: return false
        }
    }
}

/// A compiled regular expression with search semantics (anchor with `^`/`$` to match the
/// whole text).
struct CompiledRegex: @unchecked Sendable {
    // Safe to share: a `Regex` is an immutable value whose only mutation is the one-time,
    // atomically published lowering of its program, which `init` triggers before the value
    // can be shared. It is not `Sendable` only because `AnyRegexOutput` holds `Any` captures,
    // and none of those ever leave `matches`.
    private let regex: Regex<AnyRegexOutput>

    init?(pattern: String, caseInsensitive: Bool) {
        guard let regex = try? Regex(pattern) else { return nil }
        self.regex = caseInsensitive ? regex.ignoresCase() : regex
        _ = try? self.regex.firstMatch(in: "")
    }

    func matches(_ text: String) -> Bool {
        (try? regex.firstMatch(in: text)) != nil
    }
}
