import OCSF

/// The value of a window rule's aggregated field that a partial carries: text for `distinct`,
/// a number for `sum`, `min`, `max` and `avg`.
public enum AggregateValue: Sendable, Hashable {
    /// The field's plain text (`22` for the number 22).
    case text(String)
    /// The field's number.
    case number(Double)

    /// The value as it travels in a partial record.
    public var json: JSON {
        switch self {
        case .text(let text): .string(text)
        case .number(let number): .double(number)
        }
    }

    /// The value of a partial record's `value` member: a string or a finite number.
    public init?(json: JSON) {
        switch json {
        case .string(let text): self = .text(text)
        case .int(let number): self = .number(Double(number))
        case .double(let number) where number.isFinite: self = .number(number)
        default: return nil
        }
    }

    /// The text compared by `distinct`; a number's canonical JSON text.
    var text: String {
        switch self {
        case .text(let text): text
        case .number(let number): JSON.double(number).scalarText ?? ""
        }
    }

    /// The number aggregated by the numeric aggregates; `nil` for text.
    var number: Double? {
        if case .number(let number) = self { return number }
        return nil
    }
}

/// One selected event of a window rule, as written to `vigil.detect.partials`: small, keyed by
/// (rule, group key) so the aggregate step that owns the key sees every partial of it.
public struct Partial: Sendable, Equatable {
    /// The rule that selected the event.
    public var ruleID: String
    /// The rule's version at selection time.
    public var ruleVersion: Int
    /// The group key: the `group_by` values, `|`-joined with `%` and `|` percent-escaped.
    public var groupKey: String
    /// The `group_by` values by field path.
    public var groupValues: [String: String]
    /// The event time, epoch milliseconds.
    public var eventTime: Int64
    /// The event's `metadata.uid`.
    public var eventUID: String
    /// The event's `actor`, `src_endpoint`, `cloud` and `vigil.asset`, at their own paths,
    /// so the alert can show who and where without the whole event.
    public var context: JSON
    /// The event's value of the field the rule aggregates; `nil` for `count` rules (and in
    /// records written before aggregates other than `count` existed).
    public var value: AggregateValue?
    /// For sequence and absence rules, the index of the step the event matched (absence: 0
    /// the trigger, 1 the expected event); `nil` for window rules and in records written
    /// before steps existed.
    public var step: Int?
    /// The input partition the event was read from (`topic/partition`), so the aggregate step
    /// can hold its watermark back for the slowest source (see ``PartitionAggregator``); `nil`
    /// in records written before sources were recorded.
    public var source: String?

    /// Creates a partial.
    public init(ruleID: String, ruleVersion: Int, groupKey: String, groupValues: [String: String],
                eventTime: Int64, eventUID: String, context: JSON = .object([:]), value: AggregateValue? = nil,
                step: Int? = nil, source: String? = nil) {
        self.source = source
        self.ruleID = ruleID
        self.ruleVersion = ruleVersion
        self.groupKey = groupKey
        self.groupValues = groupValues
        self.eventTime = eventTime
        self.eventUID = eventUID
        self.context = context
        self.value = value
        self.step = step
    }

    /// The Kafka key: `rule id|group key`.
    public var kafkaKey: String { "\(ruleID)|\(groupKey)" }

    /// The record value written to the partials topic.
    public func json() -> JSON {
        var members: [String: JSON] = [
            "rule_id": .string(ruleID),
            "rule_version": .int(Int64(ruleVersion)),
            "group_key": .string(groupKey),
            "group": .object(groupValues.mapValues { .string($0) }),
            "time": .int(eventTime),
            "event_uid": .string(eventUID),
            "context": context,
        ]
        // Absent for count rules, so their records stay as older readers expect them.
        if let value { members["value"] = value.json }
        if let step { members["step"] = .int(Int64(step)) }
        if let source { members["src"] = .string(source) }
        return .object(members)
    }

    /// Reads a partial written by `json()`.
    ///
    /// - Throws: `RuleError` with code `invalid_partial` naming the missing or mistyped member.
    public init(json: JSON) throws(RuleError) {
        func member(_ name: String) -> RuleError {
            RuleError(code: .invalidPartial, reason: "partial record lacks a valid '\(name)'")
        }
        guard let ruleID = json["rule_id"]?.stringValue, !ruleID.isEmpty else { throw member("rule_id") }
        guard let version = json["rule_version"]?.intValue, version >= 1, version <= Int64(Int32.max) else {
            throw member("rule_version")
        }
        guard let groupKey = json["group_key"]?.stringValue else { throw member("group_key") }
        guard let group = json["group"]?.objectValue else { throw member("group") }
        var groupValues: [String: String] = [:]
        for (path, value) in group {
            guard let text = value.stringValue else { throw member("group") }
            groupValues[path] = text
        }
        guard let time = json["time"]?.intValue else { throw member("time") }
        guard let uid = json["event_uid"]?.stringValue, !uid.isEmpty else { throw member("event_uid") }
        let context = json["context"] ?? .object([:])
        guard context.objectValue != nil else { throw member("context") }
        var value: AggregateValue?
        if let valueJSON = json["value"], valueJSON != .null {
            guard let decoded = AggregateValue(json: valueJSON) else { throw member("value") }
            value = decoded
        }
        var step: Int?
        if let stepJSON = json["step"], stepJSON != .null {
            guard let index = stepJSON.intValue, index >= 0, index < 1000 else { throw member("step") }
            step = Int(index)
        }
        var source: String?
        if let sourceJSON = json["src"], sourceJSON != .null {
            guard let text = sourceJSON.stringValue, !text.isEmpty else { throw member("src") }
            source = text
        }
        self.init(ruleID: ruleID, ruleVersion: Int(version), groupKey: groupKey, groupValues: groupValues,
                  eventTime: time, eventUID: uid, context: context, value: value, step: step, source: source)
    }

    /// The event members a partial keeps as context.
    static let contextPaths = ["actor", "src_endpoint", "cloud", "vigil.asset"]

    /// The context of `event`: the members of `contextPaths` that are present (not null).
    static func context(of event: JSON) -> JSON {
        guard case .object(let members) = event else { return .object([:]) }
        var context: [String: JSON] = [:]
        // contextPaths, built directly rather than through `set` (which splits each path).
        for name in ["actor", "src_endpoint", "cloud"] {
            if let value = members[name], value != .null { context[name] = value }
        }
        if case .object(let vigil)? = members["vigil"], let asset = vigil["asset"], asset != .null {
            context["vigil"] = .object(["asset": asset])
        }
        return .object(context)
    }

    /// The group key of `values` in `group_by` order.
    static func groupKey(_ values: [String]) -> String {
        if values.count == 1, let only = values.first, !needsEscaping(only) { return only }
        return values.map { value in
            needsEscaping(value) ? value.replacing("%", with: "%25").replacing("|", with: "%7C") : value
        }.joined(separator: "|")
    }

    /// Whether `value` holds a `%` or `|` (most group values hold neither).
    private static func needsEscaping(_ value: String) -> Bool {
        value.utf8.contains { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "|") }
    }
}

/// What the select step makes of an event for one rule.
public enum Selection: Sendable, Equatable {
    /// A single-event rule matched: the finished alert.
    case alert(JSON)
    /// A window rule matched: the partial to send to the aggregate step.
    case partial(Partial)
}

/// The select step: evaluates every rule's `match` against each event. Stateless, so any
/// number of copies can run on any partitions.
public struct RuleSelector: Sendable {
    /// The rules evaluated.
    public let rules: RuleSet
    /// The rules, each behind one reference, so the loop over them per event does not copy
    /// (retain and release) every member of every rule.
    private let entries: [Entry]
    /// Skips the rules an event's indexed fields already rule out.
    private let prefilter: RulePrefilter

    private final class Entry: Sendable {
        let rule: Rule
        init(_ rule: Rule) { self.rule = rule }
    }

    /// A selector for `rules`.
    public init(rules: RuleSet) {
        self.rules = rules
        self.entries = rules.rules.map(Entry.init)
        self.prefilter = RulePrefilter(rules: rules.rules)
    }

    /// The alerts (single-event rules) and partials (stateful rules) for `event`, in rule order.
    ///
    /// Events without an integer `time` are never selected (event time drives every window and
    /// alert time). Events without `metadata.uid` get a uid hashed from their bytes. A stateful
    /// rule does not select an event that lacks one of its `group_by` fields (missing, null,
    /// empty, or not a scalar), nor one whose aggregated (or first-seen) field is missing,
    /// null, empty or not a scalar (`distinct`, first seen) or not a JSON number (`sum`,
    /// `min`, `max`, `avg`). A sequence or absence rule yields one partial per step the event
    /// matches, carrying the step index.
    public func select(_ event: JSON) -> [Selection] {
        guard let time = OCSFEvent.time(event) else { return [] }
        var selections: [Selection] = []
        var uid: String?
        // Taken from the event once, whichever rules select it.
        var eventContext: JSON?
        let passed = prefilter.passedTests(event)
        for (index, entry) in entries.enumerated()
        where prefilter.mayMatch(rule: index, passed: passed) && evaluate(entry.rule.match, on: event) {
            let rule = entry.rule
            let eventUID = uid ?? OCSFEvent.uid(event).flatMap { $0.isEmpty ? nil : $0 } ?? StableID.hash(bytes: event.serialized())
            uid = eventUID
            guard let groupBy = rule.groupBy else {
                selections.append(.alert(AlertBuilder.singleEvent(rule: rule, event: event, eventUID: eventUID, eventTime: time)))
                continue
            }
            var values: [String] = []
            var groupValues: [String: String] = [:]
            for path in groupBy {
                guard let text = event.value(at: path)?.scalarText, !text.isEmpty else { break }
                values.append(text)
                groupValues[path] = text
            }
            guard values.count == groupBy.count else { continue }
            let context = eventContext ?? Partial.context(of: event)
            eventContext = context
            func partial(value: AggregateValue?, step: Int?) -> Selection {
                .partial(Partial(
                    ruleID: rule.id, ruleVersion: rule.version, groupKey: Partial.groupKey(values),
                    groupValues: groupValues, eventTime: time, eventUID: eventUID, context: context,
                    value: value, step: step))
            }
            if rule.stepCount > 0 {
                // Sequence and absence rules: one partial per step the event matches.
                for step in 0..<rule.stepCount where rule.stepCondition(step).map({ evaluate($0, on: event) }) == true {
                    selections.append(partial(value: nil, step: step))
                }
                continue
            }
            var value: AggregateValue?
            if let (field, numeric) = rule.valueField {
                guard let aggregated = Self.aggregateValue(of: event, field: field, numeric: numeric) else { continue }
                value = aggregated
            }
            selections.append(partial(value: value, step: nil))
        }
        return selections
    }

    /// The value of `field` in `event` for an aggregate: a JSON number for numeric aggregates
    /// (numeric text is not converted), else non-empty scalar text; `nil` when there is none.
    static func aggregateValue(of event: JSON, field: String, numeric: Bool) -> AggregateValue? {
        guard let value = event.value(at: field) else { return nil }
        if numeric {
            switch value {
            case .int(let number): return .number(Double(number))
            case .double(let number) where number.isFinite: return .number(number)
            default: return nil
            }
        }
        guard let text = value.scalarText, !text.isEmpty else { return nil }
        return .text(text)
    }
}
