import Foundation
import Kafka
import Logging
import Yams

/// Why a stage's configuration cannot be used.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    /// Human reason naming the setting (never a secret's value).
    public let reason: String
    /// A configuration error.
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "configuration error: \(reason)" }
}

/// Everything a stage process needs, with documented defaults. Built from, in order of
/// precedence: command-line flags, `VIGIL_*` environment variables, a YAML file
/// (`--config FILE` or `VIGIL_CONFIG`), defaults.
///
/// File keys: `brokers`, `topic_prefix`, `group_id`, `metrics_port`, `metrics_host`,
/// `log_level`, `batch_size`, `max_read_skew_ms`, librdkafka properties passed through either as a `kafka:`
/// mapping or as flat `kafka.<property>` keys, and `settings:` (stage-specific, e.g.
/// `inventory`, `rules`, `playbooks`).
public struct StageConfig: Sendable {
    /// Stage name, used as client id and default consumer group (`vigil-ingest`).
    public var stage: String
    /// Consumer group; every copy of a stage shares it. Default: the stage name.
    public var groupID: String
    /// Broker connection and librdkafka passthrough.
    public var kafka: KafkaConfig
    /// Topic names (prefix default `vigil.`).
    public var topics: Topics
    /// Port of `/metrics`, `/healthz`, `/readyz`; 0 turns the endpoint off.
    public var metricsPort: Int
    /// Address the endpoint binds. Default loopback; use 0.0.0.0 in containers.
    public var metricsHost: String
    /// Log level (`trace` ... `critical`). Default `info`.
    public var logLevel: Logger.Level
    /// Most records taken per poll and processed as one produce batch. Default 1000.
    public var batchSize: Int
    /// Stop once inputs were processed and then nothing arrived for this long (benchmarks
    /// and runs over a finite topic). Default `nil`: run until SIGTERM.
    public var exitWhenIdle: Duration?
    /// Read alignment: while catching up, an input partition whose record timestamps run
    /// more than this far ahead of the slowest partition of its topic waits for it, so a
    /// backlog is processed in about the order it was written (see ``ReadAlignment``).
    /// `nil` turns it off. Default 5 s (``defaultMaxReadSkew``), well under the rules'
    /// lateness (30 s by default).
    public var maxReadSkew: Duration?
    /// Read alignment: bytes of records one partition may hold back before the consumer
    /// pauses it. Default 8 MiB.
    public var maxHeldBytesPerPartition: Int = 8 << 20
    /// Read alignment: how long a partition that delivers nothing is still waited for
    /// (``ReadAlignment/idleMillis``). Default 5 s.
    public var readIdle: Duration = .seconds(5)
    /// Stage-specific settings (`inventory`, `rules`, `playbooks`, ...).
    public var settings: [String: String]

    /// Defaults for `stage`.
    public init(stage: String) {
        self.stage = stage
        self.groupID = stage
        self.kafka = KafkaConfig(clientID: stage)
        self.topics = Topics()
        self.metricsPort = StageConfig.defaultMetricsPort(stage)
        self.metricsHost = "127.0.0.1"
        self.logLevel = .info
        self.batchSize = 1000
        self.exitWhenIdle = nil
        self.maxReadSkew = StageConfig.defaultMaxReadSkew
        self.settings = [:]
    }

    /// Default read alignment skew, for every stage: ingest and enrich re-key events (by
    /// principal, then by asset once it is known) and detect's select step re-keys them into
    /// partials, so each merges input partitions into output partitions; respond counts rate
    /// limits in alert time. Detect's aggregate step and respond's executor never align (their
    /// partitions' state is independent of the others').
    public static let defaultMaxReadSkew: Duration = .seconds(5)

    /// Default metrics ports, one per stage so a machine can run one of each.
    public static func defaultMetricsPort(_ stage: String) -> Int {
        switch stage {
        case "vigil-ingest": 9464
        case "vigil-enrich": 9465
        case "vigil-detect": 9466
        case "vigil-respond": 9467
        default: 0
        }
    }

    /// Loads the file (if any) and environment on top of the defaults, then validates.
    public static func load(stage: String, file: String?, environment: [String: String]) throws(ConfigError) -> StageConfig {
        var config = StageConfig(stage: stage)
        if let path = file ?? environment["VIGIL_CONFIG"] {
            try config.apply(fileAt: path)
        }
        config.apply(environment: environment)
        try config.validate()
        return config
    }

    mutating func apply(fileAt path: String) throws(ConfigError) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigError("cannot read config file \(path)")
        }
        let loaded: Any?
        do { loaded = try Yams.load(yaml: text) } catch { throw ConfigError("config file \(path) is not valid YAML: \(error)") }
        guard let root = loaded as? [String: Any] else { throw ConfigError("config file \(path) must be a mapping") }
        for (key, value) in root {
            switch key {
            case "brokers": kafka.bootstrapServers = "\(value)"
            case "topic_prefix": topics = Topics(prefix: "\(value)")
            case "group_id": groupID = "\(value)"
            case "metrics_port":
                guard let port = Int("\(value)") else { throw ConfigError("metrics_port in \(path) must be a number") }
                metricsPort = port
            case "metrics_host": metricsHost = "\(value)"
            case "log_level":
                guard let level = Logger.Level(rawValue: "\(value)") else { throw ConfigError("log_level in \(path): unknown level") }
                logLevel = level
            case "batch_size":
                guard let size = Int("\(value)") else { throw ConfigError("batch_size in \(path) must be a number") }
                batchSize = size
            case "max_read_skew_ms":
                guard let millis = Int("\(value)"), millis >= 0 else { throw ConfigError("max_read_skew_ms in \(path) must be a number of milliseconds (0 turns read alignment off)") }
                maxReadSkew = millis == 0 ? nil : .milliseconds(millis)
            case "kafka":
                guard let properties = value as? [String: Any] else { throw ConfigError("kafka in \(path) must be a mapping of librdkafka properties") }
                for (name, setting) in properties { kafka.properties[name] = "\(setting)" }
            case let flat where flat.hasPrefix("kafka.") && flat.count > "kafka.".count:
                kafka.properties[String(flat.dropFirst("kafka.".count))] = "\(value)"
            case "settings":
                guard let extra = value as? [String: Any] else { throw ConfigError("settings in \(path) must be a mapping") }
                for (name, setting) in extra { settings[name] = "\(setting)" }
            default:
                throw ConfigError("unknown key '\(key)' in \(path)")
            }
        }
    }

    mutating func apply(environment: [String: String]) {
        kafka = KafkaConfig.fromEnvironment(environment, base: kafka)
        if let prefix = environment["VIGIL_TOPIC_PREFIX"] { topics = Topics(prefix: prefix) }
        if let group = environment["VIGIL_GROUP_ID"] { groupID = group }
        if let port = environment["VIGIL_METRICS_PORT"].flatMap(Int.init) { metricsPort = port }
        if let host = environment["VIGIL_METRICS_HOST"] { metricsHost = host }
        if let level = environment["VIGIL_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) { logLevel = level }
        if let millis = environment["VIGIL_MAX_READ_SKEW_MS"].flatMap(Int.init), millis >= 0 {
            maxReadSkew = millis == 0 ? nil : .milliseconds(millis)
        }
        for (name, value) in environment where name.hasPrefix("VIGIL_SETTING_") {
            settings[String(name.dropFirst("VIGIL_SETTING_".count)).lowercased()] = value
        }
    }

    /// Checks the values that would otherwise fail later and less clearly.
    public func validate() throws(ConfigError) {
        guard !kafka.bootstrapServers.isEmpty else { throw ConfigError("brokers must not be empty") }
        guard (0...65535).contains(metricsPort) else { throw ConfigError("metrics_port must be 0...65535") }
        guard batchSize > 0 else { throw ConfigError("batch_size must be positive") }
        guard !groupID.isEmpty else { throw ConfigError("group_id must not be empty") }
    }
}
