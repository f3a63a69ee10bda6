import Foundation
import Kafka
import Logging
import Pipeline

/// A real broker process per test: tests never share topics or groups by accident and never
/// depend on order. Skips (through `isAvailable`) when the broker binary is absent; `make test`
/// installs it first.
public enum TestBroker {
    /// The broker binary: `VIGIL_TANSU`, else `tools/bin/tansu` in this repository.
    public static let binary: String? = {
        if let found = EmbeddedBroker.locateBinary() { return found }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidate = repo.appendingPathComponent("tools/bin/tansu").path
        return FileManager.default.isExecutableFile(atPath: candidate) ? candidate : nil
    }()

    /// Whether integration tests can run here.
    public static var isAvailable: Bool { binary != nil }

    /// Starts a fresh broker.
    public static func start() async throws -> EmbeddedBroker {
        guard let binary else { throw ConfigError("tansu broker not found; run scripts/setup") }
        return try await EmbeddedBroker.start(binary: binary)
    }

    /// Client settings for tests: a low session timeout so group joins take seconds, not tens
    /// of seconds (production keeps librdkafka's defaults).
    public static func config(_ broker: EmbeddedBroker, clientID: String = "vigil-test") -> KafkaConfig {
        KafkaConfig(bootstrapServers: broker.bootstrapServers, clientID: clientID, properties: [
            "session.timeout.ms": "6000",
            "heartbeat.interval.ms": "500",
            "topic.metadata.refresh.interval.ms": "1000",
        ])
    }

    /// A logger that stays quiet unless `VIGIL_TEST_LOG` is set.
    public static let logger: Logger = {
        var logger = Logger(label: "vigil-test")
        logger.logLevel = ProcessInfo.processInfo.environment["VIGIL_TEST_LOG"] != nil ? .debug : .critical
        return logger
    }()

    /// Polls until `condition` holds or `timeout` passes.
    public static func eventually(timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return try await condition()
    }

    /// Reads everything from `topic` (all partitions, from the beginning) until `count`
    /// records arrived or `timeout` passed.
    public static func readAll(_ broker: EmbeddedBroker, topic: String, partitions: Int32, atLeast count: Int,
                               timeout: Duration = .seconds(30)) async throws -> [ConsumedRecord] {
        let consumer = try KafkaConsumer(config: config(broker), groupID: nil, logger: logger)
        try consumer.assign((0..<partitions).map { TopicPartitionOffset(TopicPartition(topic: topic, partition: $0), offset: KafkaConsumer.beginning) })
        var records: [ConsumedRecord] = []
        let deadline = ContinuousClock.now + timeout
        while records.count < count && ContinuousClock.now < deadline {
            records += try await consumer.poll(maxRecords: 1000, timeout: .milliseconds(200)).records
        }
        // Pick up anything else already there (duplicates, extra records) for a moment more.
        for _ in 0..<3 { records += try await consumer.poll(maxRecords: 1000, timeout: .milliseconds(200)).records }
        await consumer.close()
        return records
    }
}
