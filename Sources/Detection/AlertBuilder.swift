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
