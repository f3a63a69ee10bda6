import OCSF

/// Unix syslog lines about logins and accounts: RFC 3164 (BSD, `/var/log/auth.log`), the same
/// layout with an RFC 3339 timestamp (rsyslog's file format, Debian 12+), and RFC 5424; each with
/// or without `<PRI>`, one line or many per record. sshd, sudo, su and shadow-utils messages become
/// OCSF Authentication (3002) or Account Change (3001) events (`SyslogMessages.swift`); other valid
/// syslog lines (cron, kernel, ...) are counted in `skipped`; lines that are not syslog are failures.
public struct SyslogParser: SourceParser {
    /// How the year of an RFC 3164 timestamp (`Nov 20 09:14:02`, which has none) is chosen.
    public enum YearRule: Sendable, Equatable {
        /// Always this year.
        case fixed(Int)
        /// The year (of the one before, the same, or the one after) that puts the timestamp
        /// nearest to this instant, in epoch milliseconds: a December line read on 2 January
        /// lands in the old year.
        case nearest(toMillis: Int64)
    }

    /// The rule for RFC 3164 years; RFC 5424 and RFC 3339 timestamps carry their own.
    public let yearRule: YearRule

    /// A parser that dates year-less RFC 3164 lines in `assumedYear` (clamped to 1...9999).
    /// The default, 1970, is only meant for tests and tools that do not care about the year;
    /// the ingest stage should use `init(referenceTime:)`.
    public init(assumedYear: Int = 1970) {
        yearRule = .fixed(min(max(assumedYear, 1), 9999))
    }

    /// A parser that dates year-less RFC 3164 lines in the year nearest to `referenceTime`
    /// (epoch ms). The ingest stage passes the Kafka record's timestamp, which is fixed when the
    /// record is produced, so replaying the record gives the same events; the current time would
    /// not.
    public init(referenceTime: Int64) {
        // Clamped to years 1...9999 so the year arithmetic cannot overflow.
        yearRule = .nearest(toMillis: min(max(referenceTime, -62_135_596_800_000), 253_402_300_799_999))
    }

    /// `syslog`.
    public var sourceName: String { "syslog" }

    /// Syslog is text.
    public var readsJSON: Bool { false }

    /// The record's own time, when the stage knows it, beats the configured rule: RFC 3164
    /// years are then resolved against when the record was produced.
    private func rule(for input: SourceInput) -> YearRule {
        guard let recordTime = input.recordTime else { return yearRule }
        return SyslogParser(referenceTime: recordTime).yearRule
    }

    /// Strict: the first non-blank line must have a syslog timestamp (RFC 3164 `Mmm dd hh:mm:ss`,
    /// RFC 3339, or RFC 5424 `1 <timestamp>`), a host name and an `app[pid]:` tag (RFC 3164) or
    /// the RFC 5424 header fields. A VPC flow-log line, JSON or CSV never has that shape.
    public func recognizes(_ input: SourceInput) -> Bool {
        guard let line = VPCFlowMapping.lines(input.raw).first(where: { !$0.bytes.isEmpty }),
              let text = String(validating: line.bytes, as: UTF8.self),
              case .success(let header) = SyslogLine.parse(text, yearRule: rule(for: input)) else { return false }
        return header.format == .rfc5424 || (header.host != nil && header.app != nil)
    }

    /// Maps every line on its own; a bad line becomes a failure with its index and bytes when the
    /// record holds more than one, and its siblings still become events.
    public func normalize(_ input: SourceInput) -> NormalizeResult {
        var result = NormalizeResult(source: sourceName)
        let entries = VPCFlowMapping.lines(input.raw).filter { !$0.bytes.isEmpty }
        guard !entries.isEmpty else {
            result.failures.append(NormalizeFailure(code: NormalizeFailure.Code.unrecognizedFormat,
                                                    message: "the record holds no syslog line"))
            return result
        }
        let single = entries.count == 1
        let yearRule = rule(for: input)
        for entry in entries {
            let outcome = Self.outcome(entry.bytes, yearRule: yearRule)
            switch outcome {
            case .event(let event): result.events.append(event)
            case .skipped: result.skipped += 1
            case .failure(let code, let message):
                result.failures.append(single
                    ? NormalizeFailure(code: code, message: message)
                    : NormalizeFailure(code: code, message: message, entryIndex: entry.index, entryBytes: Array(entry.bytes)))
            }
        }
        return result
    }

    static func outcome(_ bytes: ArraySlice<UInt8>, yearRule: YearRule) -> VPCFlowMapping.Outcome {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return .failure(code: NormalizeFailure.Code.invalidEntry, message: "the line is not valid UTF-8")
        }
        switch SyslogLine.parse(text, yearRule: yearRule) {
        case .failure(let problem):
            return .failure(code: problem.code, message: problem.message)
        case .success(let line):
            guard let facts = SyslogMessages.facts(app: line.app, message: line.message) else { return .skipped }
            // The line without its line ending is the record: the same line always gets the same id.
            return .event(SyslogMessages.event(facts, line: line, uid: StableID.hash(bytes: bytes)))
        }
    }
}

/// The header fields of one syslog line and its free-text message.
struct SyslogLine {
    enum Format: Equatable { case rfc3164, rfc5424 }

    struct Problem: Error {
        let code: String
        let message: String
        static let notSyslog = Problem(code: NormalizeFailure.Code.unrecognizedFormat,
                                       message: "the line is not RFC 3164 or RFC 5424 syslog")
    }

    var format: Format
    var priority: Int?
    var time: Int64
    var timeText: String
    var host: String?
    var app: String?
    var pid: String?
    var msgID: String?
    var structuredData: [String: JSON]?
    var message: Substring

    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func parse(_ text: String, yearRule: SyslogParser.YearRule) -> Result<SyslogLine, Problem> {
        var rest = Substring(text)
        var priority: Int?
        if rest.hasPrefix("<") {
            guard let close = rest.prefix(5).firstIndex(of: ">") else { return .failure(.notSyslog) }
            let digits = rest[rest.index(after: rest.startIndex)..<close]
            guard (1...3).contains(digits.count), digits.allSatisfy(\.isASCIIDigit),
                  let value = Int(digits), value <= 191 else { return .failure(.notSyslog) }
            priority = value
            rest = rest[rest.index(after: close)...]
        }
        if rest.hasPrefix("1 ") {
            return parse5424(rest.dropFirst(2), priority: priority)
        }
        return parse3164(rest, priority: priority, yearRule: yearRule)
    }

    /// `TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]` (after `VERSION SP`).
    private static func parse5424(_ text: Substring, priority: Int?) -> Result<SyslogLine, Problem> {
        var rest = text
        func field() -> Substring? {
            guard let space = rest.firstIndex(of: " ") else { return nil }
            let value = rest[..<space]
            rest = rest[rest.index(after: space)...]
            return value.isEmpty ? nil : value
        }
        guard let timestamp = field(), let host = field(), let app = field(), let procID = field(), let msgID = field(),
              !rest.isEmpty else {
            return .failure(.notSyslog)
        }
        // A nil or malformed timestamp is a time problem only once the line is clearly RFC 5424.
        let structured: [String: JSON]?
        switch structuredData(&rest) {
        case .success(let parsed): structured = parsed
        case .failure(let problem): return .failure(problem)
        }
        guard timestamp != "-" else {
            return .failure(Problem(code: NormalizeFailure.Code.invalidTime, message: "the RFC 5424 TIMESTAMP is nil"))
        }
        guard let time = Timestamp.parseISO8601(String(timestamp)) else {
            return .failure(Problem(code: NormalizeFailure.Code.invalidTime, message: "the RFC 5424 TIMESTAMP is not RFC 3339"))
        }
        if rest.hasPrefix(" ") { rest = rest.dropFirst() }
        if rest.hasPrefix("\u{FEFF}") { rest = rest.dropFirst() }
        func nilable(_ value: Substring) -> String? { value == "-" ? nil : String(value) }
        return .success(SyslogLine(
            format: .rfc5424, priority: priority, time: time, timeText: String(timestamp), host: nilable(host),
            app: nilable(app), pid: nilable(procID), msgID: nilable(msgID), structuredData: structured, message: rest
        ))
    }

    /// `-`, or `[id name="value" ...]...` with `\"`, `\\` and `\]` escapes; consumes it from `rest`.
    private static func structuredData(_ rest: inout Substring) -> Result<[String: JSON]?, Problem> {
        let malformed = Problem(code: NormalizeFailure.Code.unrecognizedFormat, message: "the RFC 5424 STRUCTURED-DATA is malformed")
        if rest.hasPrefix("-") {
            rest = rest.dropFirst()
            guard rest.isEmpty || rest.hasPrefix(" ") else { return .failure(malformed) }
            return .success(nil)
        }
        var elements: [String: JSON] = [:]
        var chars = rest.unicodeScalars[...]
        while chars.first == "[" {
            chars = chars.dropFirst()
            guard let idEnd = chars.firstIndex(where: { $0 == " " || $0 == "]" }) else { return .failure(malformed) }
            let id = String(chars[..<idEnd])
            guard !id.isEmpty else { return .failure(malformed) }
            chars = chars[idEnd...]
            var params: [String: JSON] = [:]
            while chars.first == " " {
                chars = chars.dropFirst()
                guard let equals = chars.firstIndex(of: "="), chars[chars.index(after: equals)...].first == "\"" else {
                    return .failure(malformed)
                }
                let name = String(chars[..<equals])
                chars = chars[chars.index(equals, offsetBy: 2)...]
                var value = String.UnicodeScalarView()
                var closed = false
                while let scalar = chars.first {
                    chars = chars.dropFirst()
                    if scalar == "\\", let next = chars.first, next == "\"" || next == "\\" || next == "]" {
                        value.append(next)
                        chars = chars.dropFirst()
                    } else if scalar == "\"" {
                        closed = true
                        break
                    } else {
                        value.append(scalar)
                    }
                }
                guard closed, !name.isEmpty else { return .failure(malformed) }
                params[name] = .string(String(value))
            }
            guard chars.first == "]" else { return .failure(malformed) }
            chars = chars.dropFirst()
            elements[id] = .object(params)
        }
        guard !elements.isEmpty, chars.isEmpty || chars.first == " " else { return .failure(malformed) }
        rest = Substring(chars)
        return .success(elements)
    }

    /// `TIMESTAMP HOSTNAME TAG: MSG`, TIMESTAMP being `Mmm dd hh:mm:ss` (day space- or
    /// zero-padded) or RFC 3339; HOSTNAME may be missing when the tag follows the timestamp.
    private static func parse3164(_ text: Substring, priority: Int?, yearRule: SyslogParser.YearRule) -> Result<SyslogLine, Problem> {
        var rest = text
        let time: Int64
        let timeText: String
        if let month = months.firstIndex(where: { rest.hasPrefix($0 + " ") }) {
            // "Nov 20 09:14:02" or "Nov  2 09:14:02": 15 characters.
            let stamp = rest.prefix(15)
            guard stamp.count == 15, rest.dropFirst(15).first == " " else { return .failure(.notSyslog) }
            let chars = Array(stamp.utf8)
            func digit(_ i: Int) -> Int? { (48...57).contains(chars[i]) ? Int(chars[i] - 48) : nil }
            let dayTens = chars[4] == UInt8(ascii: " ") ? 0 : digit(4)
            guard let dayTens, let dayOnes = digit(5), let h1 = digit(7), let h2 = digit(8), chars[9] == UInt8(ascii: ":"),
                  let m1 = digit(10), let m2 = digit(11), chars[12] == UInt8(ascii: ":"), let s1 = digit(13), let s2 = digit(14),
                  chars[6] == UInt8(ascii: " ")
            else { return .failure(.notSyslog) }
            let (day, hour, minute, second) = (dayTens * 10 + dayOnes, h1 * 10 + h2, m1 * 10 + m2, s1 * 10 + s2)
            guard (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return .failure(.notSyslog) }
            timeText = String(stamp)
            guard let resolved = resolve(month: month + 1, day: day, hour: hour, minute: minute, second: second, rule: yearRule) else {
                return .failure(Problem(code: NormalizeFailure.Code.invalidTime, message: "the RFC 3164 date does not exist in the assumed year"))
            }
            time = resolved
            rest = rest.dropFirst(16)
        } else if let first = rest.first, first.isASCIIDigit, let space = rest.prefix(40).firstIndex(of: " "),
                  let parsed = Timestamp.parseISO8601(String(rest[..<space])) {
            time = parsed
            timeText = String(rest[..<space])
            rest = rest[rest.index(after: space)...]
        } else {
            return .failure(.notSyslog)
        }

        // HOSTNAME, unless the next word is already the tag (local messages without a host).
        var host: String?
        let firstWord = rest.prefix(while: { $0 != " " })
        guard !firstWord.isEmpty else { return .failure(.notSyslog) }
        if tag(firstWord) == nil {
            host = String(firstWord)
            rest = rest.dropFirst(firstWord.count)
            if rest.hasPrefix(" ") { rest = rest.dropFirst() }
        }
        var app: String?
        var pid: String?
        let tagWord = rest.prefix(while: { $0 != " " })
        if let parsed = tag(tagWord) {
            (app, pid) = parsed
            rest = rest.dropFirst(tagWord.count)
            if rest.hasPrefix(" ") { rest = rest.dropFirst() }
        }
        return .success(SyslogLine(format: .rfc3164, priority: priority, time: time, timeText: timeText, host: host,
                                   app: app, pid: pid, msgID: nil, structuredData: nil, message: rest))
    }

    /// `app[pid]:` or `app:` (the app printable ASCII without `[`, `]`, `:`, at most 48 characters).
    static func tag(_ word: Substring) -> (String, String?)? {
        guard word.hasSuffix(":") else { return nil }
        var body = word.dropLast()
        var pid: String?
        if body.hasSuffix("]"), let open = body.lastIndex(of: "[") {
            let digits = body[body.index(after: open)..<body.index(before: body.endIndex)]
            guard !digits.isEmpty, digits.count <= 10, digits.allSatisfy(\.isASCIIDigit) else { return nil }
            pid = String(digits)
            body = body[..<open]
        }
        guard (1...48).contains(body.count),
              body.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && $0 != "[" && $0 != "]" && $0 != ":" })
        else { return nil }
        return (String(body), pid)
    }

    /// Epoch milliseconds of a year-less date under `rule`, `nil` when the date does not exist
    /// (29 February outside a leap year).
    static func resolve(month: Int, day: Int, hour: Int, minute: Int, second: Int, rule: SyslogParser.YearRule) -> Int64? {
        func millis(_ year: Int) -> Int64? {
            guard (1...9999).contains(year), day <= daysIn(month: month, year: year) else { return nil }
            func pad(_ value: Int, _ width: Int) -> String {
                let text = String(value)
                return String(repeating: "0", count: max(0, width - text.count)) + text
            }
            return Timestamp.parseISO8601("\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2))Z")
        }
        switch rule {
        case .fixed(let year):
            return millis(year)
        case .nearest(let reference):
            guard let year = Int(Timestamp.formatISO8601(reference).prefix(4)) else { return nil }
            return [year - 1, year, year + 1].compactMap(millis).min { abs($0 - reference) < abs($1 - reference) }
        }
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}

extension Character {
    /// `0`...`9` only (`isNumber` also accepts other scripts' digits and fractions).
    fileprivate var isASCIIDigit: Bool { self >= "0" && self <= "9" }
}
