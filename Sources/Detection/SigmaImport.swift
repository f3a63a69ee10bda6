import OCSF
import YAMLFiles

/// What `vigil rules import-sigma` made of a set of Sigma files: one outcome per Sigma
/// document (a detection or correlation rule), converted or with the reason it was not.
public struct SigmaImportReport: Sendable {
    /// The fate of one Sigma document.
    public struct Outcome: Sendable {
        /// The Sigma file.
        public var file: String
        /// The Sigma title, when the document had one.
        public var title: String?
        /// The Vigil rule id written (`sigma.<id>`), when a rule was written.
        public var ruleID: String?
        /// The file name (no directory) the rule is written to, when a rule was written.
        public var outputName: String?
        /// The Vigil rule YAML, when a rule was written.
        public var yaml: String?
        /// The rule as loaded back from `yaml`.
        public var rule: Rule?
        /// Extra information for a converted document (a base rule folded into a correlation).
        public var note: String?
        /// Why the document was not converted; `nil` when it was.
        public var failure: String?

        /// Whether the document was converted.
        public var converted: Bool { failure == nil }
    }

    /// One outcome per Sigma document (or per file that is not YAML), in file order.
    public var outcomes: [Outcome]

    /// The number of Sigma documents seen.
    public var rules: Int { outcomes.count }
    /// How many were converted.
    public var converted: Int { outcomes.count(where: \.converted) }
    /// How many were not.
    public var failed: Int { rules - converted }
    /// converted / rules, 0 for no rules.
    public var rate: Double { rules == 0 ? 0 : Double(converted) / Double(rules) }
    /// The outcomes that carry a rule to write.
    public var written: [Outcome] { outcomes.filter { $0.yaml != nil } }

    /// `52 of 66 Sigma rules converted (78.8%), 14 not converted`.
    public var summary: String {
        let percent = (rate * 1000).rounded() / 10
        return "\(converted) of \(rules) Sigma rules converted (\(percent)%), \(failed) not converted"
    }

    /// `{"rules":N,"converted":N,"failed":N,"rate":X,"failures":[{"file":...,"reason":...}]}`;
    /// the rate is rounded to four decimals.
    public func json() -> JSON {
        let failures: [JSON] = outcomes.compactMap { outcome in
            outcome.failure.map { JSON.object(["file": .string(outcome.file), "reason": .string($0)]) }
        }
        return .object([
            "rules": .int(Int64(rules)), "converted": .int(Int64(converted)), "failed": .int(Int64(failed)),
            "rate": .double((rate * 10_000).rounded() / 10_000), "failures": .array(failures),
        ])
    }
}

/// Converts Sigma rule files into Vigil rules. Pure: the caller reads the files and writes the
/// results (see `vigil rules import-sigma`).
public enum SigmaImport {
    /// The Detection Rule License SigmaHQ rules are published under; each converted rule names
    /// it with the rule's author, as the license requires of every copy.
    public static let licenseURL = "https://github.com/SigmaHQ/Detection-Rule-License"

    /// One parsed document and where it came from.
    struct Document {
        var file: String
        var index: Int
        var countInFile: Int
        var rule: Result<SigmaRule, RuleError>
    }

    /// A detection converted to a condition.
    struct Converted {
        var match: Condition
        var aggregation: SigmaAggregation?
        var profile: SigmaLogSourceProfile
        var timeframeMillis: Int64?
    }

    /// Converts every Sigma document in `files` (path and text each). Correlation rules may
    /// refer to rules in any of the files, by `id` or `name`.
    public static func convert(files: [(path: String, text: String)],
                               profiles: [SigmaLogSourceProfile] = SigmaLogSourceProfile.supported) -> SigmaImportReport {
        var documents: [Document] = []
        var outcomes: [(position: Int, outcome: SigmaImportReport.Outcome)] = []
        var position = 0
        for file in files {
            do {
                let parsed = try SigmaRule.parse(yaml: file.text, file: file.path)
                for (index, rule) in parsed.enumerated() {
                    documents.append(Document(file: file.path, index: index, countInFile: parsed.count, rule: rule))
                }
            } catch {
                outcomes.append((position, SigmaImportReport.Outcome(file: file.path, failure: reason(error))))
            }
            position += 1
        }

        var byReference: [String: Int] = [:]
        for (index, document) in documents.enumerated() {
            guard case .success(let rule) = document.rule else { continue }
            for reference in [rule.id, rule.name].compactMap({ $0 }) where byReference[reference] == nil {
                byReference[reference] = index
            }
        }

        // Detections first: correlations read their conditions.
        var converted: [Int: Result<Converted, RuleError>] = [:]
        for (index, document) in documents.enumerated() {
            guard case .success(let rule) = document.rule, case .detection(let detection) = rule.body else { continue }
            converted[index] = Result { () throws(RuleError) -> Converted in try convertDetection(detection, profiles: profiles) }
        }

        // Base rules of correlations that do not `generate` are not rules of their own.
        var foldedInto: [Int: Int] = [:]
        for (index, document) in documents.enumerated() {
            guard case .success(let rule) = document.rule, case .correlation(let correlation) = rule.body,
                  !correlation.generate else { continue }
            for reference in correlation.rules {
                if let base = byReference[reference], base != index, foldedInto[base] == nil { foldedInto[base] = index }
            }
        }

        var correlations: [Int: Result<(Rule, [String]), RuleError>] = [:]
        var written: [String: String] = [:]   // Vigil id -> Sigma file
        var outputNames: Set<String> = []
        var results: [SigmaImportReport.Outcome] = []
        for (index, document) in documents.enumerated() {
            var outcome = SigmaImportReport.Outcome(file: document.file)
            let rule: SigmaRule
            switch document.rule {
            case .failure(let error):
                outcome.failure = reason(error)
                results.append(outcome)
                continue
            case .success(let parsed):
                rule = parsed
            }
            outcome.title = rule.title
            let id = vigilID(rule, document: document)
            let built: Result<(Rule, [String]), RuleError>
            switch rule.body {
            case .detection:
                if let correlation = foldedInto[index] {
                    let result = correlations[correlation] ?? convertCorrelation(at: correlation, documents: documents,
                                                                                  byReference: byReference, converted: converted)
                    correlations[correlation] = result
                    let correlationTitle = (try? documents[correlation].rule.get().title) ?? "?"
                    switch (converted[index]!, result) {
                    case (.failure(let error), _):
                        outcome.failure = reason(error)
                    case (.success, .failure(let error)):
                        outcome.failure = "used only by correlation '\(correlationTitle)', which is not convertible: \(reason(error))"
                    case (.success, .success(let (vigilRule, _))):
                        outcome.note = "folded into correlation rule \(vigilRule.id) (generate: false)"
                    }
                    results.append(outcome)
                    continue
                }
                built = converted[index]!.flatMap { (base: Converted) -> Result<(Rule, [String]), RuleError> in
                    Result { () throws(RuleError) -> (Rule, [String]) in try detectionRule(rule, id: id, converted: base) }
                }
            case .correlation:
                let result = correlations[index] ?? convertCorrelation(at: index, documents: documents,
                                                                       byReference: byReference, converted: converted)
                correlations[index] = result
                built = result
            }
            switch built {
            case .failure(let error):
                outcome.failure = reason(error)
            case .success(let (vigilRule, comments)):
                if let first = written[vigilRule.id] {
                    outcome.failure = "rule id '\(vigilRule.id)' is already used by \(first)"
                    break
                }
                let yaml = SigmaRuleWriter.yaml(vigilRule, comments: comments)
                // What is written must load: read it back with the rule loader itself.
                do {
                    let loaded = try RuleSet.parse(yaml: yaml, file: "\(vigilRule.id).yaml")
                    guard loaded.count == 1, var back = loaded.first else {
                        outcome.failure = "the written rule does not read back as one rule"
                        break
                    }
                    back.file = nil
                    guard back == vigilRule else {
                        outcome.failure = "the written rule reads back differently (a converter bug)"
                        break
                    }
                    outcome.rule = back
                } catch {
                    outcome.failure = "the written rule does not load: \(error.reason)"
                    break
                }
                written[vigilRule.id] = document.file
                outcome.ruleID = vigilRule.id
                outcome.yaml = yaml
                outcome.outputName = uniqueName(outputStem(document), taken: &outputNames)
            }
            results.append(outcome)
        }
        // Unreadable files first in their position, then documents in file order.
        var fileOrder: [String: Int] = [:]
        for (offset, file) in files.enumerated() where fileOrder[file.path] == nil { fileOrder[file.path] = offset }
        var merged = outcomes.map { (position: $0.position, outcome: $0.outcome) }
        merged += results.map { (position: fileOrder[$0.file] ?? 0, outcome: $0) }
        let ordered = merged.enumerated().sorted { ($0.element.position, $0.offset) < ($1.element.position, $1.offset) }.map(\.element.outcome)
        return SigmaImportReport(outcomes: ordered)
    }

    /// The error's reason, without the file (the report names it) but with the line.
    static func reason(_ error: RuleError) -> String {
        error.line.map { "line \($0): \(error.reason)" } ?? error.reason
    }

    static func convertDetection(_ detection: SigmaDetection, profiles: [SigmaLogSourceProfile]) throws(RuleError) -> Converted {
        let profile = try SigmaConverter.profile(for: detection, among: profiles)
        let (match, aggregation) = try SigmaConverter(profile: profile).convert(detection)
        var timeframe: Int64?
        if aggregation != nil {
            guard let text = detection.timeframe else {
                throw RuleError(code: .invalidRule, reason: "an aggregation needs 'timeframe'")
            }
            timeframe = try duration(text, what: "timeframe")
        }
        return Converted(match: match, aggregation: aggregation, profile: profile, timeframeMillis: timeframe)
    }

    /// A Sigma detection as a Vigil rule: single-event, or a sliding window for a legacy
    /// `| count() ...` aggregation.
    static func detectionRule(_ sigma: SigmaRule, id: String, converted: Converted) throws(RuleError) -> (Rule, [String]) {
        var window: WindowSpec?
        if let aggregation = converted.aggregation, let size = converted.timeframeMillis {
            let aggregate: WindowSpec.Aggregate
            if let field = aggregation.field {
                let path = try groupPath(field, profile: converted.profile)
                aggregate = aggregation.function == "count" ? .distinct(field: path) : WindowSpec.Aggregate(name: aggregation.function, field: path)!
            } else {
                aggregate = .count
            }
            let opName = ["<": "lt", "<=": "lte", ">": "gt", ">=": "gte", "==": "eq"][aggregation.op] ?? aggregation.op
            window = try slidingWindow(groupBy: aggregation.groupBy.map { [$0] } ?? [], size: size, aggregate: aggregate,
                                       comparisons: [(opName, aggregation.value)], profile: converted.profile)
        }
        return (makeRule(sigma, id: id, match: converted.match, window: window, tags: sigma.tags), attribution(sigma))
    }

    static func convertCorrelation(at index: Int, documents: [Document], byReference: [String: Int],
                                   converted: [Int: Result<Converted, RuleError>]) -> Result<(Rule, [String]), RuleError> {
        Result { () throws(RuleError) -> (Rule, [String]) in
            func invalid(_ reason: String) -> RuleError { RuleError(code: .invalidRule, reason: reason) }
            let sigma = try documents[index].rule.get()
            guard case .correlation(let correlation) = sigma.body else { throw invalid("not a correlation") }
            let ordered = correlation.type == "temporal_ordered"
            switch correlation.type {
            case "event_count", "value_count", "value_sum", "value_avg", "temporal_ordered": break
            case "temporal":
                throw invalid(unorderedTemporalReason(rules: correlation.rules.count))
            default:
                throw invalid("correlation type '\(correlation.type)' is not supported")
            }
            guard !correlation.hasAliases else { throw invalid("correlation 'aliases' are not supported") }
            guard let timespanText = correlation.timespan else { throw invalid("the correlation has no 'timespan'") }
            let size = try duration(timespanText, what: "timespan")
            if ordered { try checkOrderedCorrelation(correlation) }
            var matches: [Condition] = []
            var profile: SigmaLogSourceProfile?
            var baseTags: [String] = []
            for reference in correlation.rules {
                guard let base = byReference[reference] else { throw invalid("the correlation refers to rule '\(reference)', which is not among the imported files") }
                guard case .success(let baseRule) = documents[base].rule, case .detection = baseRule.body,
                      let result = converted[base] else {
                    if case .success(let other) = documents[base].rule, case .correlation = other.body {
                        throw invalid("the correlation refers to correlation '\(reference)'; chained correlations are not supported")
                    }
                    throw invalid("the correlation refers to rule '\(reference)', which is not a usable Sigma rule")
                }
                let baseConverted: Converted
                switch result {
                case .success(let value): baseConverted = value
                case .failure(let error): throw invalid("its rule '\(reference)' is not convertible: \(reason(error))")
                }
                guard baseConverted.aggregation == nil else { throw invalid("its rule '\(reference)' has an aggregation of its own") }
                if let profile, profile.product != baseConverted.profile.product || profile.service != baseConverted.profile.service {
                    throw invalid("its rules come from different log sources")
                }
                profile = baseConverted.profile
                matches.append(baseConverted.match)
                baseTags += baseRule.tags
            }
            guard let profile else { throw invalid("the correlation names no rule") }
            let id = vigilID(sigma, document: documents[index])
            let tags = sigma.tags.isEmpty ? baseTags : sigma.tags
            if ordered {
                // The referenced rules in order are the steps; the steps select, so the rule
                // has no `match` of its own.
                let sequence = SequenceSpec(groupBy: try groupPaths(correlation.groupBy, profile: profile),
                                            steps: matches.map { SequenceSpec.Step(match: $0) }, withinMillis: size)
                return (makeRule(sigma, id: id, match: .all([]), window: nil, sequence: sequence, tags: tags), attribution(sigma))
            }
            let aggregate: WindowSpec.Aggregate
            if correlation.type == "event_count" {
                aggregate = .count
            } else {
                guard let field = correlation.field else { throw invalid("\(correlation.type) needs 'condition.field'") }
                let path = try groupPath(field, profile: profile)
                aggregate = correlation.type == "value_count" ? .distinct(field: path)
                    : correlation.type == "value_sum" ? .sum(field: path) : .avg(field: path)
            }
            let window = try slidingWindow(groupBy: correlation.groupBy, size: size, aggregate: aggregate,
                                           comparisons: correlation.comparisons, profile: profile)
            let match = matches.count == 1 ? matches[0] : SigmaConverter.flatten(.any(matches))
            return (makeRule(sigma, id: id, match: match, window: window, tags: tags), attribution(sigma))
        }
    }

    /// Why a `temporal` correlation (every referenced rule within the timespan, in any order)
    /// is not converted: Vigil's sequences are ordered, and no other construct says "all of
    /// these, in any order".
    static func unorderedTemporalReason(rules: Int) -> String {
        let orders = rules < 2 ? "" : " (\((2...min(rules, 20)).reduce(1, *))\(rules > 20 ? "+" : "") for \(rules) rules)"
        return "correlation type 'temporal' (every referenced rule within the timespan, in any order) has no faithful Vigil form: "
            + "a sequence fixes the order, and one sequence rule per order\(orders) would alert once per order the same events "
            + "complete (A, B, A completes both 'A then B' and 'B then A'); not converted (temporal_ordered is)"
    }

    /// What a `temporal_ordered` correlation must be for a Vigil sequence: 2 to 20 distinct
    /// rules, and no condition other than "all rules matched" (Sigma counts the referenced rules
    /// that matched; a sequence needs every step).
    static func checkOrderedCorrelation(_ correlation: SigmaCorrelation) throws(RuleError) {
        func invalid(_ reason: String) -> RuleError { RuleError(code: .invalidRule, reason: reason) }
        let count = correlation.rules.count
        guard count >= 2 else {
            throw invalid("temporal_ordered names \(count) rule; a Vigil sequence needs 2 to 20 steps (for one rule, convert the rule itself)")
        }
        guard count <= SigmaImport.maximumSequenceSteps else {
            throw invalid("temporal_ordered names \(count) rules; a Vigil sequence takes at most \(SigmaImport.maximumSequenceSteps) steps")
        }
        var seen: Set<String> = []
        for reference in correlation.rules where !seen.insert(reference).inserted {
            throw invalid("temporal_ordered names rule '\(reference)' more than once; Sigma counts the distinct rules that matched, so a repeated step has no defined meaning")
        }
        guard correlation.field == nil else {
            throw invalid("'condition.field' has no meaning for temporal_ordered (it counts the rules that matched)")
        }
        guard !correlation.comparisons.isEmpty else { return }
        func met(_ matched: Int) -> Bool {
            correlation.comparisons.allSatisfy { comparison in
                let value = Double(matched)
                switch comparison.op {
                case "gt": return value > comparison.value
                case "gte": return value >= comparison.value
                case "lt": return value < comparison.value
                case "lte": return value <= comparison.value
                case "eq": return value == comparison.value
                case "neq": return value != comparison.value
                default: return false
                }
            }
        }
        let written = correlation.comparisons.map { "\($0.op) \(JSON.double($0.value).scalarText ?? "")" }.joined(separator: " and ")
        if let fewer = (1..<count).first(where: met) {
            throw invalid("condition '\(written)' is met when \(fewer) of the \(count) rules matched; a Vigil sequence needs every step, so only 'all rules matched' (no condition, or one only \(count) meets, such as gte: \(count)) is convertible")
        }
        guard met(count) else {
            throw invalid("condition '\(written)' is never met by the \(count) rules the correlation names")
        }
    }

    /// The most steps a Vigil sequence takes (docs/rules.md).
    static let maximumSequenceSteps = 20

    /// A sliding window for a Sigma threshold. Only growth can be detected by a sliding window,
    /// so `lt`, `lte` and ranges are refused with the reason.
    static func slidingWindow(groupBy: [String], size: Int64, aggregate: WindowSpec.Aggregate,
                              comparisons: [(op: String, value: Double)], profile: SigmaLogSourceProfile) throws(RuleError) -> WindowSpec {
        func invalid(_ reason: String) -> RuleError { RuleError(code: .invalidRule, reason: reason) }
        guard comparisons.count == 1, let comparison = comparisons.first else {
            if comparisons.isEmpty { throw invalid("the correlation has no condition") }
            throw invalid("a range condition (\(comparisons.map(\.op).joined(separator: " and "))) needs an upper bound, which a sliding window cannot check (it fires as events arrive); not convertible yet")
        }
        let op: Threshold.Op
        switch comparison.op {
        case "gt": op = .greaterThan
        case "gte": op = .greaterThanOrEqual
        case "eq": op = .equal
        case "lt", "lte":
            throw invalid("condition '\(comparison.op)' (fewer than) needs a tumbling window: a sliding window fires as events arrive and would alert on the first one; not convertible yet")
        default:
            throw invalid("condition '\(comparison.op)' is not supported")
        }
        return WindowSpec(groupBy: try groupPaths(groupBy, profile: profile), kind: .sliding, sizeMillis: size,
                          aggregate: aggregate, threshold: Threshold(op: op, value: comparison.value))
    }

    /// The group key paths for Sigma `group-by` fields; without any, the whole source is one
    /// group (Vigil windows and sequences need one).
    static func groupPaths(_ groupBy: [String], profile: SigmaLogSourceProfile) throws(RuleError) -> [String] {
        var paths: [String] = []
        for field in groupBy { paths.append(try groupPath(field, profile: profile)) }
        return paths.isEmpty ? [profile.wholeSourceGroupField] : paths
    }

    static func groupPath(_ field: String, profile: SigmaLogSourceProfile) throws(RuleError) -> String {
        switch profile.mapping.target(for: field) {
        case .success(let target): return target.groupPath
        case .failure(let failure): throw RuleError(code: .invalidRule, reason: failure.description)
        }
    }

    /// `15m`, `1h`, `30s`, `2d` in milliseconds (Sigma time spans), at most 366 days.
    static func duration(_ text: String, what: String) throws(RuleError) -> Int64 {
        let units: [Character: Int64] = ["s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000]
        let trimmed = text.trimmingWhitespace()
        guard let unit = trimmed.last, let scale = units[unit], let amount = Int64(trimmed.dropLast()),
              amount > 0, amount <= 366 * 86_400_000 / scale else {
            throw RuleError(code: .invalidRule, reason: "\(what) must be a number and s, m, h or d, at most 366d")
        }
        return amount * scale
    }

    /// The Vigil rule for a converted Sigma rule.
    static func makeRule(_ sigma: SigmaRule, id: String, match: Condition, window: WindowSpec?,
                         sequence: SequenceSpec? = nil, tags: [String]) -> Rule {
        var attack: [String] = []
        var labels = ["sigma"]
        for tag in tags {
            let lower = tag.lowercased()
            guard lower.hasPrefix("attack.") else { continue }
            let name = String(lower.dropFirst("attack.".count))
            if name.hasPrefix("t"), name.dropFirst().first?.isNumber == true {
                let technique = name.uppercased()
                if YAMLReader.isTechniqueID(technique), !attack.contains(technique) { attack.append(technique) }
            } else if !((name.hasPrefix("g") || name.hasPrefix("s")) && name.dropFirst().first?.isNumber == true) {
                // Tactics (attack.defense-evasion); groups (g0001) and software (s0001) are skipped.
                let tactic = name.replacingUnderscores()
                if !labels.contains(tactic) { labels.append(tactic) }
            }
        }
        let severity = sigma.level.flatMap(OCSFSeverity.init(name:)) ?? .medium
        var description = sigma.description.trimmingWhitespace()
        if !description.isEmpty { description += "\n\n" }
        let fileName = sigma.file.split(separator: "/").last.map(String.init) ?? sigma.file
        description += "Sigma rule \(fileName)\(sigma.id.map { " (id \($0))" } ?? "")"
        description += " by \(sigma.author ?? "an unnamed author"), Detection Rule License 1.1 (\(licenseURL));"
        description += " converted by vigil rules import-sigma."
        return Rule(id: id, version: 1, title: sigma.title, description: description, severity: severity,
                    attack: attack, tags: labels, match: match, window: window, sequence: sequence)
    }

    /// The header comment of a written rule: source and the license's attribution.
    static func attribution(_ sigma: SigmaRule) -> [String] {
        [
            "Converted from the Sigma rule \(sigma.file)\(sigma.id.map { " (id \($0))" } ?? "") by `vigil rules import-sigma`.",
            "Author: \(sigma.author ?? "not named"). Licensed under the Detection Rule License 1.1:",
            licenseURL,
            "Modified in conversion: Sigma fields are mapped to OCSF paths (docs/sigma.md).",
        ].map { $0.replacingNewlines() }
    }

    /// `sigma.<id>`, else `sigma.<file stem>` (with the document number in multi-document
    /// files), limited to the characters rule ids allow.
    static func vigilID(_ sigma: SigmaRule, document: Document) -> String {
        var base = sigma.id ?? outputStem(document)
        base = String(base.unicodeScalars.map { scalar -> Character in
            let allowed = ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
                || scalar == "." || scalar == "_" || scalar == "-"
            return allowed ? Character(scalar) : "_"
        })
        return "sigma." + String(base.prefix(190))
    }

    /// The file stem, with `-N` for the Nth document of a multi-document file.
    static func outputStem(_ document: Document) -> String {
        let name = document.file.split(separator: "/").last.map(String.init) ?? document.file
        var stem = name
        for suffix in [".yml", ".yaml"] where stem.hasSuffix(suffix) { stem = String(stem.dropLast(suffix.count)) }
        if stem.isEmpty { stem = "rule" }
        return document.countInFile > 1 ? "\(stem)-\(document.index + 1)" : stem
    }

    static func uniqueName(_ stem: String, taken: inout Set<String>) -> String {
        var candidate = stem + ".yaml"
        var counter = 2
        while !taken.insert(candidate).inserted {
            candidate = "\(stem)-\(counter).yaml"
            counter += 1
        }
        return candidate
    }
}

extension String {
    func replacingUnderscores() -> String { String(map { $0 == "_" ? "-" : $0 }) }
    func replacingNewlines() -> String { String(map { $0.isNewline ? " " : $0 }) }
}
