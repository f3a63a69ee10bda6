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
        let vigil = members["vigil"]
        return context(actor: members["actor"], srcEndpoint: members["src_endpoint"], cloud: members["cloud"],
                       asset: vigil.flatMap { if case .object(let vigil) = $0 { vigil["asset"] } else { nil } })
    }

    /// The context made of the `contextPaths` values found (in that order).
    static func context(actor: JSON?, srcEndpoint: JSON?, cloud: JSON?, asset: JSON?) -> JSON {
        var context = [String: JSON](minimumCapacity: 4)
        if let actor, actor != .null { context["actor"] = actor }
        if let srcEndpoint, srcEndpoint != .null { context["src_endpoint"] = srcEndpoint }
        if let cloud, cloud != .null { context["cloud"] = cloud }
        if let asset, asset != .null { context["vigil"] = .object(["asset": asset]) }
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
///
/// The rules are compiled once: every field path they read is interned in one ``FieldPaths``
/// tree, so per event each object member is looked up at most once, however many rules read
/// it; a ``RulePrefilter`` skips the rules the event's indexed fields rule out.
public struct RuleSelector: Sendable {
    /// The rules evaluated.
    public let rules: RuleSet
    /// The rules, compiled, each behind one reference.
    private let entries: [Entry]
    /// Skips the rules an event's indexed fields already rule out.
    private let prefilter: RulePrefilter
    /// Every path the rules read, with the members a partial keeps as context.
    private let paths: FieldPaths
    private let contextNodes: (actor: Int, srcEndpoint: Int, cloud: Int, asset: Int)
    /// `time` and `metadata.uid`, read as `OCSFEvent.time` and `OCSFEvent.uid` read them.
    private let timeNode: Int
    private let uidNode: Int

    private final class Entry: Sendable {
        let rule: Rule
        let id: String
        let version: Int
        let match: CompiledCondition
        /// A stateful rule's `group_by` fields (path and node); `nil` for single-event rules.
        let groupBy: [GroupField]?
        /// The step conditions of a sequence or absence rule.
        let steps: [CompiledCondition]
        /// The node of the field whose value a partial carries, and whether it must be a number.
        let valueField: (node: Int, numeric: Bool)?

        init(_ rule: Rule, paths: inout FieldPaths.Builder) {
            self.rule = rule
            id = rule.id
            version = rule.version
            match = CompiledCondition(rule.match, paths: &paths)
            groupBy = rule.groupBy?.map { GroupField(path: $0, node: paths.node($0)) }
            steps = (0..<rule.stepCount).compactMap { rule.stepCondition($0) }.map { CompiledCondition($0, paths: &paths) }
            valueField = rule.valueField.map { (paths.node($0.path), $0.numeric) }
        }
    }

    private struct GroupField: Sendable {
        let path: String
        let node: Int
    }

    /// A selector for `rules`.
    public init(rules: RuleSet) {
        self.rules = rules
        var builder = FieldPaths.Builder()
        self.prefilter = RulePrefilter(rules: rules.rules, paths: &builder)
        self.entries = rules.rules.map { Entry($0, paths: &builder) }
        self.contextNodes = (builder.node("actor"), builder.node("src_endpoint"), builder.node("cloud"), builder.node("vigil.asset"))
        self.timeNode = builder.node("time")
        self.uidNode = builder.node("metadata.uid")
        self.paths = builder.build()
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
        guard case .object = event else { return [] }
        var fields = EventFields(event, paths: paths)
        return select(&fields)
    }

    /// `select(_:)` for an event's bytes (a Kafka record's value), checked as `JSON.parse`
    /// checks them. Only the fields the rules read are parsed, and the context a partial
    /// keeps; the whole event is parsed only for a single-event rule's alert or an event
    /// without `metadata.uid` that a rule selects. Most events match no rule, and cost a scan.
    ///
    /// - Returns: `nil` when the bytes are valid JSON but not an object.
    /// - Throws: the error `JSON.parse` throws for the same bytes.
    public func select(bytes: [UInt8]) throws(JSONParseError) -> [Selection]? {
        guard let scanned = try JSON.scan(bytes, plan: paths.plan) else { return nil }
        var fields = EventFields(scanned: consume scanned, paths: paths)
        return select(&fields)
    }

    private func select(_ fields: inout EventFields) -> [Selection] {
        // As `OCSFEvent.time` and `OCSFEvent.uid` read them, through the cache.
        guard let time = fields.value(timeNode)?.intValue else { return [] }
        var selections: [Selection] = []
        var uid: String?
        // Taken from the event once, whichever rules select it.
        var eventContext: JSON?
        let passed = prefilter.passedTests(&fields)
        for (index, entry) in entries.enumerated()
        where prefilter.mayMatch(rule: index, passed: passed) && entry.match.matches(&fields) {
            let eventUID = uid ?? fields.value(uidNode)?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
                ?? StableID.hash(bytes: fields.document().serialized())
            uid = eventUID
            guard let groupBy = entry.groupBy else {
                selections.append(.alert(AlertBuilder.singleEvent(rule: entry.rule, event: fields.document(), eventUID: eventUID, eventTime: time)))
                continue
            }
            var values: [String] = []
            values.reserveCapacity(groupBy.count)
            var groupValues = [String: String](minimumCapacity: groupBy.count)
            for field in groupBy {
                guard let text = fields.value(field.node)?.scalarText, !text.isEmpty else { break }
                values.append(text)
                groupValues[field.path] = text
            }
            guard values.count == groupBy.count else { continue }
            let context = eventContext ?? Partial.context(
                actor: fields.value(contextNodes.actor), srcEndpoint: fields.value(contextNodes.srcEndpoint),
                cloud: fields.value(contextNodes.cloud), asset: fields.value(contextNodes.asset))
            eventContext = context
            func partial(value: AggregateValue?, step: Int?) -> Selection {
                .partial(Partial(
                    ruleID: entry.id, ruleVersion: entry.version, groupKey: Partial.groupKey(values),
                    groupValues: groupValues, eventTime: time, eventUID: eventUID, context: context,
                    value: value, step: step))
            }
            if !entry.steps.isEmpty {
                // Sequence and absence rules: one partial per step the event matches.
                for (step, condition) in entry.steps.enumerated() where condition.matches(&fields) {
                    selections.append(partial(value: nil, step: step))
                }
                continue
            }
            var value: AggregateValue?
            if let (node, numeric) = entry.valueField {
                guard let aggregated = Self.aggregateValue(fields.value(node), numeric: numeric) else { continue }
                value = aggregated
            }
            selections.append(partial(value: value, step: nil))
        }
        return selections
    }

    /// The value of an aggregated field (`nil`: absent) for a partial: a JSON number for
    /// numeric aggregates (numeric text is not converted), else non-empty scalar text; `nil`
    /// when there is none.
    static func aggregateValue(_ value: JSON?, numeric: Bool) -> AggregateValue? {
        guard let value else { return nil }
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
