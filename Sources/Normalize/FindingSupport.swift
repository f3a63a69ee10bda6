import OCSF

/// What the finding parsers (Inspector, ASFF, Nessus, Qualys) share: the OCSF 1.3 finding
/// status and activity enums, the event skeleton, severity captions, the time formats AWS and
/// Tenable write, and small JSON helpers. docs/sources.md explains each choice.
enum FindingSupport {
    /// OCSF 1.3 finding `status_id` (the Findings category's own enum, not the
    /// success/failure status of activity classes that `OCSFStatus` models).
    enum Status: Int64 {
        case unknown = 0, new = 1, inProgress = 2, suppressed = 3, resolved = 4, other = 99

        /// The OCSF caption.
        var name: String {
            switch self {
            case .unknown: "Unknown"
            case .new: "New"
            case .inProgress: "In Progress"
            case .suppressed: "Suppressed"
            case .resolved: "Resolved"
            case .other: "Other"
            }
        }
    }

    /// OCSF 1.3 finding activities, shared by classes 2002, 2003 and 2004.
    enum Activity: Int64 {
        case create = 1, update = 2, close = 3

        /// The OCSF caption.
        var name: String {
            switch self {
            case .create: "Create"
            case .update: "Update"
            case .close: "Close"
            }
        }
    }

    /// The event skeleton with a finding status. `status_detail` carries the source's own label
    /// when it differs from the OCSF caption (`SUPPRESSED`, `Re-Opened`), and must for Other.
    static func base(
        class ocsfClass: OCSFClass, activity: Activity, time: Int64, severity: OCSFSeverity,
        status: Status, sourceStatus: String?, uid: String, product: String, vendor: String,
        originalTime: String?
    ) -> JSON {
        var event = OCSFEvent.base(
            class: ocsfClass, activityID: activity.rawValue, activityName: activity.name, time: time,
            severity: severity, uid: uid, product: product, vendor: vendor, originalTime: originalTime
        )
        event["status_id"] = .int(status.rawValue)
        event["status"] = .string(status == .other ? (sourceStatus ?? status.name) : status.name)
        if let sourceStatus { event["status_detail"] = .string(sourceStatus) }
        return event
    }

    /// Severity from a vendor caption: CRITICAL, HIGH, MEDIUM (or MODERATE), LOW,
    /// INFORMATIONAL (or INFO, NONE); UNTRIAGED is Unknown. Case-insensitive; `nil` otherwise.
    static func severity(label: String) -> OCSFSeverity? {
        switch trim(label).uppercased() {
        case "CRITICAL": .critical
        case "HIGH": .high
        case "MEDIUM", "MODERATE": .medium
        case "LOW": .low
        case "INFORMATIONAL", "INFO", "NONE": .informational
        case "UNTRIAGED": .unknown
        default: nil
        }
    }

    /// An OCSF account object for an AWS account id (`type_id` 10 is "AWS Account").
    static func awsAccount(_ uid: String) -> JSON {
        .object(["uid": .string(uid), "type_id": 10, "type": "AWS Account"])
    }

    /// Who scored a CVSS entry (`NVD`, a distribution), as an element of `unmapped.cvss_sources`:
    /// OCSF 1.3.0's `cvss` object has no attribute for it (`cvss.vendor_name` is OCSF 1.4), so
    /// it is kept beside the event with what identifies its score in `vulnerabilities[].cve.cvss[]`
    /// (`{cve, version, base_score, source}`). `nil` without a source.
    static func cvssSource(_ source: String?, cve: String?, version: String, baseScore: Double) -> JSON? {
        guard let source else { return nil }
        var out: [String: JSON] = ["source": .string(source), "version": .string(version), "base_score": .double(baseScore)]
        out["cve"] = cve.map(JSON.string)
        return .object(out)
    }

    /// A non-empty scalar as text (ids sometimes arrive as numbers); `nil` for anything else.
    static func text(_ value: JSON?) -> String? {
        guard let value, let scalar = value.scalarText, !scalar.isEmpty else { return nil }
        return scalar
    }

    /// The non-empty strings of an array (or of a lone string).
    static func strings(_ value: JSON?) -> [String] {
        switch value {
        case .array(let items): items.compactMap { text($0) }
        case .some(let single): text(single).map { [$0] } ?? []
        case .none: []
        }
    }

    /// The items of an array, or a lone object as a one-item list (XML converted to JSON gives
    /// an object for one child and an array for several).
    static func list(_ value: JSON?) -> [JSON] {
        switch value {
        case .array(let items): items
        case .object: [value!]
        default: []
        }
    }

    /// A number, or a numeric string ("6.5"), as a double.
    static func number(_ value: JSON?) -> Double? {
        if let double = value?.doubleValue { return double.isFinite ? double : nil }
        guard let text = text(value), let double = Double(trim(text)), double.isFinite else { return nil }
        return double
    }

    /// `YES`/`NO` (any case, also `true`/`false`); PARTIAL counts as yes (some fix exists).
    static func yesNo(_ value: JSON?) -> Bool? {
        if let bool = value?.boolValue { return bool }
        switch text(value)?.lowercased() {
        case "yes", "true", "partial", "1": return true
        case "no", "false", "0": return false
        default: return nil
        }
    }

    /// The members of `object` whose keys are not in `mapped`, or `nil` when none are left.
    static func residue(_ object: [String: JSON], mapped: Set<String>) -> JSON? {
        let rest = object.filter { !mapped.contains($0.key) }
        return rest.isEmpty ? nil : .object(rest)
    }

    /// `labels` for a tag map: `key=value`, sorted so the output is deterministic.
    static func labels(_ tags: JSON?) -> [JSON] {
        guard let tags = tags?.objectValue else { return [] }
        return tags.keys.sorted().map { key in .string("\(key)=\(tags[key]?.scalarText ?? "")") }
    }

    /// The text without leading and trailing ASCII spaces, tabs, CR and LF.
    static func trim(_ text: some StringProtocol) -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" }
        guard let start = text.firstIndex(where: { !isSpace($0) }) else { return "" }
        let end = text.lastIndex(where: { !isSpace($0) })!
        return String(text[start...end])
    }

    // MARK: - Time

    /// How a time field failed: absent everywhere, or present but not a timestamp.
    enum TimeProblem: Error {
        case missing
        case invalid(field: String)
    }

    /// The first of `fields` present in `object`, as epoch ms with its original text. Absent,
    /// null and empty fields are skipped; a present field that is no timestamp is an error rather
    /// than a reason to look further (guessing could misplace the finding in time).
    static func firstTime(_ object: [String: JSON], _ fields: [String]) -> Result<(millis: Int64, original: String, field: String), TimeProblem> {
        for field in fields {
            guard let value = object[field], value != .null else { continue }
            if case .string(let s) = value, trim(s).isEmpty { continue }
            guard let parsed = time(value) else { return .failure(.invalid(field: field)) }
            return .success((parsed.millis, parsed.original, field))
        }
        return .failure(.missing)
    }

    /// A JSON timestamp: a string in one of `parseTime`'s formats, or a number of epoch seconds
    /// (the AWS JSON protocol's timestamp encoding; values above 1e11 are taken as milliseconds).
    static func time(_ value: JSON) -> (millis: Int64, original: String)? {
        switch value {
        case .string(let text):
            return parseTime(text).map { ($0, text) }
        case .int, .double:
            guard let seconds = value.doubleValue, seconds.isFinite, abs(seconds) < 1e15 else { return nil }
            let millis = abs(seconds) >= 1e11 ? seconds : seconds * 1000
            return (Int64(millis.rounded()), value.scalarText ?? "")
        default:
            return nil
        }
    }

    /// Epoch ms of a timestamp in any format these sources write:
    /// RFC 3339 / ISO 8601 (`2024-02-02T16:30:33.045000+01:00`, also with a space for `T`);
    /// Java's `Date.toString` (`Wed Sep 04 16:59:44.356 UTC 2024`, Inspector EventBridge events);
    /// `Mar 20, 2023, 6:08:05 PM` (older Inspector EventBridge events, UTC);
    /// `Jan 5, 2021 10:24:08 MST` (Tenable.sc CSV exports).
    /// A missing zone means UTC; a zone abbreviation outside `zoneOffsets` makes the text invalid.
    static func parseTime(_ text: String) -> Int64? {
        let trimmed = trim(text)
        guard !trimmed.isEmpty, trimmed.utf8.count <= 64 else { return nil }
        if let iso = Timestamp.parseISO8601(trimmed) { return iso }
        return parseWrittenTime(trimmed)
    }

    static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    static let weekdays: Set<String> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

    /// Offsets in minutes of the zone abbreviations Tenable and AWS write. Ambiguous ones
    /// (IST, BST) are left out on purpose; CST is US Central, as Tenable.sc writes it.
    static let zoneOffsets: [String: Int64] = [
        "UTC": 0, "GMT": 0, "Z": 0, "WET": 0,
        "EST": -300, "EDT": -240, "CST": -360, "CDT": -300, "MST": -420, "MDT": -360,
        "PST": -480, "PDT": -420, "AKST": -540, "AKDT": -480, "HST": -600,
        "WEST": 60, "CET": 60, "CEST": 120, "EET": 120, "EEST": 180, "JST": 540, "AEST": 600, "AEDT": 660,
    ]

    /// Month-name timestamps, token by token: a month name, a day, a four-digit year, a clock
    /// (`h:mm:ss` with optional fraction), optionally AM/PM, a weekday and a zone.
    static func parseWrittenTime(_ text: String) -> Int64? {
        let tokens = text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\t" }).map(String.init)
        var month: Int64?, day: Int64?, year: Int64?, clock: (Int64, Int64, Int64, Int64)?
        var meridiem: String?, offset: Int64?
        for token in tokens {
            let lower = token.lowercased()
            if lower.count >= 3, let index = months.firstIndex(where: { lower.hasPrefix($0) }),
               month == nil, lower.allSatisfy(\.isLetter), lower.count <= 9 {
                month = Int64(index + 1)
            } else if lower.count == 3, weekdays.contains(lower) {
                continue
            } else if lower == "am" || lower == "pm" {
                guard meridiem == nil else { return nil }
                meridiem = lower
            } else if token.contains(":") {
                guard clock == nil, let parsed = parseClock(token) else { return nil }
                clock = parsed
            } else if token.allSatisfy(\.isNumber), token.utf8.count <= 4, let value = Int64(token) {
                if token.utf8.count == 4 {
                    guard year == nil else { return nil }
                    year = value
                } else {
                    guard day == nil else { return nil }
                    day = value
                }
            } else if let zone = zoneOffsets[token.uppercased()] {
                guard offset == nil else { return nil }
                offset = zone
            } else {
                return nil
            }
        }
        guard let month, let day, let year, let clock, (1...31).contains(day), (1970...9999).contains(year) else { return nil }
        var hour = clock.0
        if let meridiem {
            guard (1...12).contains(hour) else { return nil }
            if meridiem == "am", hour == 12 { hour = 0 }
            if meridiem == "pm", hour != 12 { hour += 12 }
        }
        guard hour < 24, clock.1 < 60, clock.2 < 61 else { return nil }
        let days = Timestamp.daysFromCivil(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + clock.1 * 60 + clock.2 - (offset ?? 0) * 60
        return seconds * 1000 + clock.3
    }

    /// `h:mm:ss`, `hh:mm:ss.fff`: hour, minute, second, milliseconds.
    static func parseClock(_ token: String) -> (Int64, Int64, Int64, Int64)? {
        let parts = token.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, let hour = Int64(parts[0]), let minute = Int64(parts[1]),
              (1...2).contains(parts[0].count), parts[1].count == 2 else { return nil }
        let secondParts = parts[2].split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard secondParts[0].count == 2, let second = Int64(secondParts[0]) else { return nil }
        var millis: Int64 = 0
        if secondParts.count == 2 {
            let fraction = secondParts[1]
            guard !fraction.isEmpty, fraction.count <= 9, fraction.allSatisfy(\.isNumber) else { return nil }
            let padded = (fraction + "000").prefix(3)
            millis = Int64(padded) ?? 0
        }
        return (hour, minute, second, millis)
    }
}
