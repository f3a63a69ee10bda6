import OCSF

/// Writes a `Rule` (single-event, window or sequence; what the Sigma import produces) as
/// Vigil rule YAML (docs/rules.md), the format `RuleSet` loads. Strings
/// are written as JSON strings, which are valid YAML double-quoted scalars, so no value is
/// ever re-typed (a title `"yes"` or a value `"0x1F"` stays a string).
public enum SigmaRuleWriter {
    /// The YAML text of `rule`, after `comments` (one `#` line each).
    public static func yaml(_ rule: Rule, comments: [String] = []) -> String {
        var lines = comments.map { $0.isEmpty ? "#" : "# " + $0 }
        lines.append("id: \(quoted(rule.id))")
        lines.append("version: \(rule.version)")
        lines.append("title: \(quoted(rule.title))")
        if !rule.description.isEmpty { lines.append("description: \(quoted(rule.description))") }
        lines.append("severity: \(rule.severity.name.lowercased())")
        if !rule.attack.isEmpty { lines.append("attack: \(flow(rule.attack.map(JSON.string)))") }
        if !rule.tags.isEmpty { lines.append("tags: \(flow(rule.tags.map(JSON.string)))") }
        // A sequence's steps select; its rule-level `match` (which only narrows) is left out
        // when it narrows nothing, as the loader reads a missing one.
        if rule.sequence == nil || rule.match != .all([]) {
            lines.append("match:")
            lines += condition(rule.match).map { "  " + $0 }
        }
        if let window = rule.window {
            lines.append("window:")
            lines.append("  group_by: \(flow(window.groupBy.map(JSON.string)))")
            lines.append("  type: \(window.kind.rawValue)")
            lines.append("  size: \(duration(window.sizeMillis))")
            switch window.aggregate {
            case .count: lines.append("  aggregate: count")
            default: lines.append("  aggregate: {\(window.aggregate.name): \(quoted(window.aggregate.field ?? ""))}")
            }
            lines.append("  threshold: \(quoted(window.threshold.description))")
            if window.latenessMillis != WindowSpec.defaultLatenessMillis { lines.append("  lateness: \(duration(window.latenessMillis))") }
            if window.graceMillis != WindowSpec.defaultGraceMillis { lines.append("  grace: \(duration(window.graceMillis))") }
        }
        if let sequence = rule.sequence {
            lines.append("sequence:")
            lines.append("  group_by: \(flow(sequence.groupBy.map(JSON.string)))")
            lines.append("  within: \(duration(sequence.withinMillis))")
            lines.append("  steps:")
            for step in sequence.steps {
                lines.append("    - match:")
                lines += condition(step.match).map { "        " + $0 }
                if step.count != 1 { lines.append("      count: \(step.count)") }
            }
            if sequence.latenessMillis != WindowSpec.defaultLatenessMillis { lines.append("  lateness: \(duration(sequence.latenessMillis))") }
            if sequence.graceMillis != WindowSpec.defaultGraceMillis { lines.append("  grace: \(duration(sequence.graceMillis))") }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The lines of a condition mapping, unindented.
    static func condition(_ condition: Condition) -> [String] {
        switch condition {
        case .all(let members), .any(let members):
            let key = if case .all = condition { "all:" } else { "any:" }
            var lines = [key]
            for member in members {
                for (index, line) in self.condition(member).enumerated() {
                    lines.append((index == 0 ? "  - " : "    ") + line)
                }
            }
            return lines
        case .not(let member):
            return ["not:"] + self.condition(member).map { "  " + $0 }
        case .field(let test):
            var lines = ["field: \(quoted(test.path))"]
            switch test.op {
            case .equals, .gt, .gte, .lt, .lte, .exists:
                lines.append("\(test.op.rawValue): \(test.values[0].jsonText)")
            default:
                lines.append("\(test.op.rawValue): \(flow(test.values))")
            }
            if test.caseInsensitive { lines.append("case_insensitive: true") }
            return lines
        }
    }

    /// `["a", 2]`.
    static func flow(_ values: [JSON]) -> String {
        "[" + values.map(\.jsonText).joined(separator: ", ") + "]"
    }

    static func quoted(_ text: String) -> String { JSON.string(text).jsonText }

    /// The largest whole unit: `90m` stays `90m`, `3600000` ms is `1h`.
    static func duration(_ millis: Int64) -> String {
        for (unit, scale) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000)]
        where millis > 0 && millis % scale == 0 {
            return "\(millis / scale)\(unit)"
        }
        return "\(millis)ms"
    }
}
