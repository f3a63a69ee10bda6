import OCSF
import Pipeline

/// An inclusive span of time, epoch milliseconds, that a replay reads: records whose
/// timestamp (event time on every topic but `raw`, where it is the shipping time) falls
/// outside it are skipped.
public struct ReplayRange: Sendable, Equatable, CustomStringConvertible {
    /// First included millisecond; `Int64.min` reads from the beginning of each partition.
    public let from: Int64
    /// Last included millisecond.
    public let to: Int64

    /// A range; throws when `from` is after `to`.
    public init(from: Int64, to: Int64) throws(ConfigError) {
        guard from <= to else {
            throw ConfigError("the range starts (\(Timestamp.formatISO8601(from))) after it ends (\(Timestamp.formatISO8601(to)))")
        }
        self.from = from
        self.to = to
    }

    /// Everything: every record of every partition (DLQ replay without `--since`).
    public static let everything = try! ReplayRange(from: .min, to: .max)

    /// Whether the range starts at the beginning of time (no seek by time is needed).
    public var isOpenStart: Bool { from == .min }

    /// Whether `time` is inside the range.
    public func contains(_ time: Int64) -> Bool { time >= from && time <= to }

    /// How far into the range `time` is, 0...1 (progress reports).
    public func fraction(_ time: Int64) -> Double {
        guard !isOpenStart, to != .max, to > from else { return time >= to ? 1 : 0 }
        return min(1, max(0, Double(time - from) / Double(to - from)))
    }

    public var description: String {
        let start = isOpenStart ? "beginning" : Timestamp.formatISO8601(from)
        let end = to == .max ? "end" : Timestamp.formatISO8601(to)
        return "[\(start), \(end)]"
    }

    /// Reads a time given on the command line: RFC 3339 (`2026-11-20T10:00:00Z`), epoch
    /// milliseconds (`1795600000000`), `now`, or `now-` followed by a count and a unit
    /// (`now-90s`, `now-15m`, `now-2h`, `now-7d`). `nil` when it is none of these.
    public static func parseTime(_ text: String, now: Int64) -> Int64? {
        let trimmed = text.trimmingSpaces
        if trimmed == "now" { return now }
        if trimmed.hasPrefix("now-") {
            let amount = trimmed.dropFirst(4)
            guard let unit = amount.last, let count = Int64(amount.dropLast()), count >= 0 else { return nil }
            let millis: Int64
            switch unit {
            case "s": millis = 1000
            case "m": millis = 60_000
            case "h": millis = 3_600_000
            case "d": millis = 86_400_000
            default: return nil
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: millis)
            return overflow ? nil : now - product
        }
        if !trimmed.isEmpty, trimmed.allSatisfy(\.isNumber), let millis = Int64(trimmed) { return millis }
        return Timestamp.parseISO8601(trimmed)
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
