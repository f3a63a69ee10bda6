import OCSF

/// The replayed alerts compared with the alerts production emitted for the same range: what a
/// rule change would have caught (new), silenced (missing) or altered (changed). Pure.
///
/// Alerts are matched by id. An alert id hashes the rule id, the rule version, the group key
/// and the window, so a rule whose version was bumped yields new ids for the same findings;
/// alerts left unmatched by id are therefore also matched by (rule id, group key or event,
/// window), and such a pair counts as changed (rule version) rather than new plus missing.
public struct ReplayDiff: Sendable {
    /// One alert present on both sides that differs.
    public struct Change: Sendable {
        /// The production alert.
        public var production: JSON
        /// The replayed alert.
        public var replay: JSON
        /// What differs, in words (`severity Medium -> High`).
        public var differences: [String]
    }

    /// Only in the replay, sorted by (time, id).
    public var new: [JSON] = []
    /// Only in production, sorted by (time, id).
    public var missing: [JSON] = []
    /// On both sides, different.
    public var changed: [Change] = []
    /// On both sides, alike in rule version, severity and aggregate.
    public var same = 0
    /// Distinct production alerts compared.
    public var productionCount = 0
    /// Distinct replayed alerts compared.
    public var replayCount = 0

    /// Compares `production` with `replay` (duplicates by id count once).
    public init(production: [JSON], replay: [JSON]) {
        let before = Self.byID(production)
        let after = Self.byID(replay)
        productionCount = before.count
        replayCount = after.count
        var onlyBefore: [String: JSON] = [:]
        var onlyAfter: [String: JSON] = [:]
        for (id, alert) in before {
            if let other = after[id] {
                let differences = Self.differences(alert, other)
                if differences.isEmpty { same += 1 } else { changed.append(Change(production: alert, replay: other, differences: differences)) }
            } else {
                onlyBefore[id] = alert
            }
        }
        for (id, alert) in after where before[id] == nil { onlyAfter[id] = alert }
        // The same finding under another rule version: a changed alert, not new plus missing.
        var afterByFinding: [String: [String]] = [:]
        for (id, alert) in onlyAfter { afterByFinding[Self.finding(alert), default: []].append(id) }
        for key in afterByFinding.keys { afterByFinding[key]!.sort() }
        for id in onlyBefore.keys.sorted() {
            let alert = onlyBefore[id]!
            let key = Self.finding(alert)
            guard var candidates = afterByFinding[key], !candidates.isEmpty else { continue }
            let match = candidates.removeFirst()
            afterByFinding[key] = candidates
            let other = onlyAfter.removeValue(forKey: match)!
            onlyBefore[id] = nil
            changed.append(Change(production: alert, replay: other, differences: Self.differences(alert, other)))
        }
        new = Self.ordered(Array(onlyAfter.values))
        missing = Self.ordered(Array(onlyBefore.values))
        changed.sort { Self.sortKey($0.replay) < Self.sortKey($1.replay) }
    }

    /// The counts, for the summary line.
    public var counts: JSON {
        ["new": .int(Int64(new.count)), "missing": .int(Int64(missing.count)), "changed": .int(Int64(changed.count)),
         "same": .int(Int64(same)), "production": .int(Int64(productionCount)), "replay": .int(Int64(replayCount))]
    }

    /// A readable report: a header with the counts, then one line per new, missing and
    /// changed alert (at most `limit` of each kind).
    public func report(topic: String, range: ReplayRange, limit: Int = 50) -> [String] {
        var lines = [
            "diff of the replay against \(topic) over \(range), by alert time:",
            "  production \(productionCount), replay \(replayCount): new \(new.count), missing \(missing.count), changed \(changed.count), same \(same)",
        ]
        func section<T>(_ items: [T], _ line: (T) -> String) {
            for item in items.prefix(limit) { lines.append(line(item)) }
            if items.count > limit { lines.append("  ... and \(items.count - limit) more") }
        }
        section(new) { "NEW      " + Self.describe($0) }
        section(missing) { "MISSING  " + Self.describe($0) }
        section(changed) { "CHANGED  " + Self.describe($0.replay) + " | " + $0.differences.joined(separator: "; ") }
        return lines
    }

    /// `aws.console.bruteforce v1 [Medium] group alice 2026-11-20T09:14:02Z..09:16:10Z count 5 (id 1a2b...)`.
    public static func describe(_ alert: JSON) -> String {
        let rule = alert.value(at: "vigil.rule.id")?.stringValue ?? "?"
        let version = alert.value(at: "vigil.rule.version")?.intValue.map { " v\($0)" } ?? ""
        let severity = alert["severity"]?.stringValue ?? "?"
        var text = "\(rule)\(version) [\(severity)]"
        if let group = alert.value(at: "vigil.group_key")?.stringValue { text += " group \(group)" }
        let start = alert.value(at: "vigil.window.start")?.intValue
        let end = alert.value(at: "vigil.window.end")?.intValue ?? alert["time"]?.intValue
        if let end {
            text += " " + (start.map { $0 == end ? "" : Timestamp.formatISO8601($0) + ".." } ?? "") + Timestamp.formatISO8601(end)
        }
        if let count = alert.value(at: "vigil.count")?.intValue { text += " count \(count)" }
        if let id = OCSFEvent.uid(alert) { text += " (id \(id.prefix(12)))" }
        return text
    }

    private static func byID(_ alerts: [JSON]) -> [String: JSON] {
        var out: [String: JSON] = [:]
        for alert in alerts {
            guard let id = OCSFEvent.uid(alert) else { continue }
            if out[id] == nil { out[id] = alert }
        }
        return out
    }

    /// What an alert is about regardless of rule version: rule, group (or the event of a
    /// single-event rule) and window.
    private static func finding(_ alert: JSON) -> String {
        let rule = alert.value(at: "vigil.rule.id")?.stringValue ?? ""
        let group = alert.value(at: "vigil.group_key")?.stringValue
            ?? alert.value(at: "vigil.event_uids.0")?.stringValue ?? ""
        let start = alert.value(at: "vigil.window.start")?.intValue ?? 0
        let end = alert.value(at: "vigil.window.end")?.intValue ?? 0
        return [rule, group, String(start), String(end)].joined(separator: "\u{1F}")
    }

    private static func differences(_ before: JSON, _ after: JSON) -> [String] {
        var out: [String] = []
        func text(_ value: JSON?) -> String { value.map { $0.scalarText ?? $0.jsonText } ?? "none" }
        let fields: [(String, String)] = [
            ("rule version", "vigil.rule.version"), ("severity", "severity"), ("count", "vigil.count"),
            ("aggregate", "vigil.aggregate"),
        ]
        for (name, path) in fields where before.value(at: path) != after.value(at: path) {
            out.append("\(name) \(text(before.value(at: path))) -> \(text(after.value(at: path)))")
        }
        return out
    }

    private static func sortKey(_ alert: JSON) -> String {
        let time = alert["time"]?.intValue ?? 0
        // Zero-padded so text order is time order for any epoch-ms value a replay meets.
        let padded = String(repeating: "0", count: max(0, 20 - String(time).count)) + String(time)
        return padded + (OCSFEvent.uid(alert) ?? "")
    }

    private static func ordered(_ alerts: [JSON]) -> [JSON] {
        alerts.sorted { sortKey($0) < sortKey($1) }
    }
}
