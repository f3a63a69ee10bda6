import Foundation
import Logging
import OCSF

/// swift-log handler writing one JSON object per line to standard error:
/// `{"time":"...","level":"info","stage":"vigil-ingest","msg":"...", ...metadata}`.
public struct JSONLogHandler: LogHandler {
    /// Minimum level written.
    public var logLevel: Logger.Level
    /// Metadata attached to every line of this logger.
    public var metadata: Logger.Metadata = [:]
    let label: String

    /// A handler for `label` at `level`.
    public init(label: String, level: Logger.Level = .info) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var object: [String: JSON] = [
            "time": .string(Timestamp.formatISO8601(Int64(Date().timeIntervalSince1970 * 1000))),
            "level": .string(event.level.rawValue),
            "logger": .string(label),
            "msg": .string(event.message.description),
        ]
        let merged = metadata.merging(event.metadata ?? [:], uniquingKeysWith: { _, new in new })
        for (key, value) in merged where object[key] == nil { object[key] = JSONLogHandler.json(value) }
        var line = JSON.object(object).serialized()
        line.append(0x0A)
        FileHandle.standardError.write(Data(line))
    }

    private static func json(_ value: Logger.Metadata.Value) -> JSON {
        switch value {
        case .string(let s): .string(s)
        case .stringConvertible(let c): .string(c.description)
        case .array(let items): .array(items.map(json))
        case .dictionary(let d): .object(d.mapValues(json))
        }
    }

    /// Installs JSON logging for the whole process (call once, at start).
    public static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: level) }
    }
}
