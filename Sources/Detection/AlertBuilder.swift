import OCSF

/// Builds alerts: OCSF Detection Findings (class 2004, activity 1 "Create").
///
/// Everything in an alert derives from the rule and the contributing events; nothing from
/// the wall clock, so replaying the same input gives byte-identical alerts.
public enum AlertBuilder {
    /// At most this many contributing event uids are listed in an alert.
    public static let maximumEventUIDs = 100

    /// The id of a single-event rule's alert for one event.
    public static func alertID(rule: Rule, eventUID: String) -> String {
        StableID.hash([rule.id, String(rule.version), eventUID])
    }

    /// The id of a window rule's alert for one group and window.
    public static func alertID(rule: Rule, groupKey: String, windowStart: Int64, windowEnd: Int64) -> String {
        StableID.hash([rule.id, String(rule.version), groupKey, String(windowStart), String(windowEnd)])
    }

    /// The id of a sequence or absence rule's alert: the group and the event that started it
    /// (a sequence's first step event, an absence's trigger).
    public static func alertID(rule: Rule, groupKey: String, firstEventUID: String) -> String {
        StableID.hash([rule.id, String(rule.version), groupKey, firstEventUID])
    }

    /// The alert of a sequence rule whose steps were completed by `eventUIDs` (in event order,
    /// the first at `start`, the completing one at `end`); `stepCounts` are the events taken
    /// per step.
    public static func sequence(
        rule: Rule, groupKey: String, groupValues: [String: String], start: Int64, end: Int64,
        eventUIDs: [String], stepCounts: [Int], context: JSON
    ) -> JSON {
        var alert = finding(
            rule: rule, id: alertID(rule: rule, groupKey: groupKey, firstEventUID: eventUIDs.first ?? ""),
            start: start, end: end, count: stepCounts.reduce(0, +), eventUIDs: eventUIDs, context: context,
            group: (groupKey, groupValues))
        alert.set("vigil.sequence", .object([
            "steps": .array(stepCounts.map { .int(Int64($0)) }),
            "within_ms": .int(rule.sequence?.withinMillis ?? 0),
        ]))
        return alert
    }

    /// The alert of an absence rule: the trigger events `eventUIDs` (the first at `start`)
    /// were not followed by the expected event before `deadline`.
    public static func absence(
        rule: Rule, groupKey: String, groupValues: [String: String], start: Int64, deadline: Int64,
        eventUIDs: [String], count: Int, context: JSON
    ) -> JSON {
        var alert = finding(
            rule: rule, id: alertID(rule: rule, groupKey: groupKey, firstEventUID: eventUIDs.first ?? ""),
            start: start, end: deadline, count: count, eventUIDs: eventUIDs, context: context,
            group: (groupKey, groupValues))
        alert.set("vigil.absence", .object(["within_ms": .int(rule.absence?.withinMillis ?? 0)]))
        return alert
    }

    /// The alert of a first-seen rule: `value` of its field was new for the group key at the
    /// event `eventUID`; `knownValues` values and `keyEvents` events were seen before it.
    public static func firstSeen(
        rule: Rule, groupKey: String, groupValues: [String: String], time: Int64, eventUID: String, value: String,
        knownValues: Int, keyEvents: Int, context: JSON
    ) -> JSON {
        var alert = finding(
            rule: rule, id: alertID(rule: rule, groupKey: groupKey, firstEventUID: eventUID), start: time, end: time,
            count: 1, eventUIDs: [eventUID], context: context, group: (groupKey, groupValues))
        alert.set("vigil.first_seen", .object([
            "field": .string(rule.firstSeen?.field ?? ""),
            "value": .string(value),
            "known_values": .int(Int64(knownValues)),
            "key_events": .int(Int64(keyEvents)),
        ]))
        return alert
    }

    /// The alert of a baseline rule: the interval [start, end) had `value` (its `count`
    /// events), `score` standard deviations above the key's history (`mean`, `stddev` over
    /// `intervals` intervals).
    public static func baseline(
        rule: Rule, groupKey: String, groupValues: [String: String], start: Int64, end: Int64, count: Int,
        eventUIDs: [String], value: Double, mean: Double, stddev: Double, score: Double, intervals: Int, context: JSON
    ) -> JSON {
        var alert = finding(
            rule: rule, id: alertID(rule: rule, groupKey: groupKey, windowStart: start, windowEnd: end),
            start: start, end: end, count: count, eventUIDs: eventUIDs, context: context, group: (groupKey, groupValues))
        guard let spec = rule.baseline else { return alert }
        var aggregate: [String: JSON] = [
            "type": .string(spec.aggregate.name),
            "value": numberJSON(value),
            "threshold": .string("score >= \(JSON.double(spec.threshold).scalarText ?? "")"),
        ]
        if let field = spec.aggregate.field { aggregate["field"] = .string(field) }
        alert.set("vigil.aggregate", .object(aggregate))
        alert.set("vigil.baseline", .object([
            "method": .string(spec.method.rawValue),
            "mean": numberJSON(mean),
            "stddev": numberJSON(stddev),
            "score": numberJSON(score),
            "intervals": .int(Int64(intervals)),
        ]))
        return alert
    }

    /// The alert of a single-event rule for `event`.
    public static func singleEvent(rule: Rule, event: JSON, eventUID: String, eventTime: Int64) -> JSON {
        finding(
            rule: rule, id: alertID(rule: rule, eventUID: eventUID), start: eventTime, end: eventTime,
            count: 1, eventUIDs: [eventUID], context: Partial.context(of: event), group: nil)
    }

    /// The alert of a window rule whose threshold was met by the events `eventUIDs` (in event
    /// order, between `windowStart` and `windowEnd`); `count` may exceed the uids listed.
    /// `context` is the last contributing event's context. `aggregateValue` is the value of
    /// the rule's aggregate that met the threshold (`count` when `nil`).
    public static func window(
        rule: Rule, groupKey: String, groupValues: [String: String], windowStart: Int64, windowEnd: Int64,
        count: Int, eventUIDs: [String], context: JSON, aggregateValue: Double? = nil
    ) -> JSON {
        var alert = finding(
            rule: rule, id: alertID(rule: rule, groupKey: groupKey, windowStart: windowStart, windowEnd: windowEnd),
            start: windowStart, end: windowEnd, count: count, eventUIDs: eventUIDs, context: context,
            group: (groupKey, groupValues))
        if let window = rule.window {
            var aggregate: [String: JSON] = [
                "type": .string(window.aggregate.name),
                "value": numberJSON(aggregateValue ?? Double(count)),
                "threshold": .string(window.threshold.description),
            ]
            if let field = window.aggregate.field { aggregate["field"] = .string(field) }
            alert.set("vigil.aggregate", .object(aggregate))
        }
        return alert
    }

    /// Whole numbers as JSON integers (`25`, not `25.0`), others as decimals.
    static func numberJSON(_ value: Double) -> JSON {
        if value.rounded() == value, abs(value) < 9e15 { return .int(Int64(value)) }
        return .double(value)
    }

    private static func finding(
        rule: Rule, id: String, start: Int64, end: Int64, count: Int, eventUIDs: [String], context: JSON,
        group: (key: String, values: [String: String])?
    ) -> JSON {
        var alert = OCSFEvent.base(
            class: .detectionFinding, activityID: 1, activityName: "Create", time: end,
            severity: rule.severity, uid: id, product: "Vigil", vendor: "Vigil")
        // A Detection Finding's status is the finding's workflow state: 1 "New".
        alert["status_id"] = .int(1)
        alert["status"] = .string("New")
        alert["message"] = .string(rule.title)
        let uids = Array(eventUIDs.prefix(maximumEventUIDs))

        var info: [String: JSON] = [
            "uid": .string(id),
            "title": .string(rule.title),
            "analytic": [
                "uid": .string(rule.id),
                "name": .string(rule.title),
                "type_id": 1,
                "type": "Rule",
                "version": .string(String(rule.version)),
            ],
            "first_seen_time": .int(start),
            "last_seen_time": .int(end),
            "related_events": .array(uids.map { ["uid": .string($0)] }),
        ]
        if !rule.description.isEmpty { info["desc"] = .string(rule.description) }
        if !rule.tags.isEmpty { info["types"] = .array(rule.tags.map { .string($0) }) }
        if !rule.attack.isEmpty {
            info["attacks"] = .array(rule.attack.map { ["technique": ["uid": .string($0)]] })
        }
        alert["finding_info"] = .object(info)

        var vigil: [String: JSON] = [
            "rule": ["id": .string(rule.id), "version": .int(Int64(rule.version))],
            "window": ["start": .int(start), "end": .int(end)],
            "count": .int(Int64(count)),
            "event_uids": .array(uids.map { .string($0) }),
        ]
        if let group {
            vigil["group_key"] = .string(group.key)
            vigil["group"] = .object(group.values.mapValues { .string($0) })
        }
        if let asset = context.value(at: "vigil.asset") { vigil["asset"] = asset }
        alert["vigil"] = .object(vigil)
        for member in ["actor", "src_endpoint", "cloud"] {
            if let value = context[member] { alert[member] = value }
        }
        return alert
    }
}
