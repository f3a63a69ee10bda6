import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Kafka
import Logging
import OCSF
import Pipeline
import Synchronization
import TestSupport
import Testing

/// Doubles integers; anything else is a dead letter. Pure, so every outcome is predictable.
struct DoublingProcessor: StageProcessor {
    let output: String

    mutating func process(_ record: ConsumedRecord) -> StageOutput {
        guard let number = Int(String(decoding: record.value, as: UTF8.self)) else {
            return StageOutput(deadLetters: [DeadLetter(code: "not_a_number", reason: "value is not an integer")])
        }
        return StageOutput(records: [OutgoingRecord(topic: output, key: record.key, value: Array(String(number * 2).utf8),
                                                    timestamp: record.timestamp)])
    }
}

@Suite(.enabled(if: TestBroker.isAvailable, "tansu broker not installed (run scripts/setup)"))
struct StageRunnerIntegrationTests {
    func makeConfig(_ broker: EmbeddedBroker, group: String) -> StageConfig {
        var config = StageConfig(stage: "vigil-test")
        config.kafka = TestBroker.config(broker)
        config.groupID = group
        config.metricsPort = 0
        config.topics = Topics(prefix: "t.")
        return config
    }

    @Test func poisonRecordGoesToTheDeadLetterTopicWhileItsPartitionFlows() async throws {
        let broker = try await TestBroker.start()
        let config = makeConfig(broker, group: "poison")
        let admin = try KafkaAdmin(config: config.kafka, logger: TestBroker.logger)
        try await admin.createTopics([TopicSpec(name: "t.in", partitions: 1, replicationFactor: 1),
                                      TopicSpec(name: "t.out", partitions: 1, replicationFactor: 1),
                                      TopicSpec(name: config.topics.deadLetters, partitions: 1, replicationFactor: 1)])
        let producer = try KafkaProducer(config: config.kafka, logger: TestBroker.logger)
        var values = (0..<20).map { String($0) }
        values[5] = "{\"poison\": true"
        try await producer.send(values.map { OutgoingRecord(topic: "t.in", partition: 0, key: Array("k".utf8), value: Array($0.utf8),
                                                            headers: [KafkaHeader("vigil-source", "test")], timestamp: 1_000) })
        let metrics = MetricsRegistry()
        let runner = StageRunner(config: config, inputTopics: ["t.in"], processor: DoublingProcessor(output: "t.out"),
                                 metrics: metrics, health: HealthState(), logger: TestBroker.logger)
        let task = Task { try await runner.run() }
        let processed = await TestBroker.eventually(timeout: .seconds(40)) { runner.stats.withLock { $0.inputs } >= 20 }
        #expect(processed)
        runner.requestStop()
        try await task.value

        let outputs = try await TestBroker.readAll(broker, topic: "t.out", partitions: 1, atLeast: 19)
        let produced: [String] = outputs.map { String(decoding: $0.value, as: UTF8.self) }
        let expected: [String] = (0..<20).filter { $0 != 5 }.map { String($0 * 2) }
        #expect(produced == expected)
        let letters = try await TestBroker.readAll(broker, topic: config.topics.deadLetters, partitions: 1, atLeast: 1)
        #expect(letters.count == 1)
        let letter = try #require(letters.first)
        #expect(letter.value == Array(values[5].utf8), "original bytes are kept")
        #expect(letter.headers.text(VigilHeader.dlqStage) == "vigil-test")
        #expect(letter.headers.text(VigilHeader.dlqErrorCode) == "not_a_number")
        #expect(letter.headers.text(VigilHeader.dlqTopic) == "t.in")
        #expect(letter.headers.text(VigilHeader.dlqPartition) == "0")
        #expect(letter.headers.text(VigilHeader.dlqOffset) == "5")
        #expect(letter.headers.text("vigil-source") == "test", "original headers are kept")
        #expect(metrics.counter("vigil_records_dead_lettered_total", labels: ["stage": "vigil-test", "code": "not_a_number"]) == 1)
        #expect(metrics.render().contains("vigil_records_in_total{stage=\"vigil-test\",topic=\"t.in\"} 20"))
    }

    @Test func aDeadLetterTooLargeForTheDeadLetterTopicIsTruncatedAndThePartitionFlows() async throws {
        let broker = try await TestBroker.start()
        let config = makeConfig(broker, group: "huge")
        let admin = try KafkaAdmin(config: config.kafka, logger: TestBroker.logger)
        try await admin.createTopics([TopicSpec(name: "t.in", partitions: 1, replicationFactor: 1),
                                      TopicSpec(name: "t.out", partitions: 1, replicationFactor: 1),
                                      TopicSpec(name: config.topics.deadLetters, partitions: 1, replicationFactor: 1)])
        // A shipper allowed larger records than the stage's producer (librdkafka's 1 MB default).
        var big = config.kafka
        big.properties["message.max.bytes"] = "4000000"
        let producer = try KafkaProducer(config: big, logger: TestBroker.logger)
        let huge = [UInt8](repeating: UInt8(ascii: "x"), count: 2_000_000)
        var records = (0..<6).map { OutgoingRecord(topic: "t.in", partition: 0, value: Array(String($0).utf8), timestamp: 1_000) }
        records[2] = OutgoingRecord(topic: "t.in", partition: 0, value: huge, timestamp: 1_000)
        for record in records { try await producer.send([record]) }
        await producer.close()
        let metrics = MetricsRegistry()
        let runner = StageRunner(config: config, inputTopics: ["t.in"], processor: DoublingProcessor(output: "t.out"),
                                 metrics: metrics, health: HealthState(), logger: TestBroker.logger)
        let task = Task { try await runner.run() }
        let processed = await TestBroker.eventually(timeout: .seconds(40)) { runner.stats.withLock { $0.inputs } >= 6 }
        #expect(processed, "the stage went past the huge record")
        runner.requestStop()
        try await task.value
        let outputs = try await TestBroker.readAll(broker, topic: "t.out", partitions: 1, atLeast: 5)
        #expect(outputs.map { String(decoding: $0.value, as: UTF8.self) } == ["0", "2", "6", "8", "10"])
        let letters = try await TestBroker.readAll(broker, topic: config.topics.deadLetters, partitions: 1, atLeast: 1)
        let letter = try #require(letters.first)
        #expect(letters.count == 1)
        #expect(letter.value.count == 64 * 1024 && letter.value.allSatisfy { $0 == UInt8(ascii: "x") })
        #expect(letter.headers.text(VigilHeader.dlqTruncated) == "2000000")
        #expect(letter.headers.text(VigilHeader.dlqErrorCode) == "not_a_number")
        #expect(letter.headers.text(VigilHeader.dlqOffset) == "2", "where the whole record still is")
        #expect(metrics.counter("vigil_dead_letters_truncated_total", labels: ["stage": "vigil-test"]) == 1)
    }

    @Test func gracefulStopLeavesNoProcessedOffsetUncommitted() async throws {
        let broker = try await TestBroker.start()
        let config = makeConfig(broker, group: "graceful")
        let admin = try KafkaAdmin(config: config.kafka, logger: TestBroker.logger)
        try await admin.createTopics([TopicSpec(name: "t.in", partitions: 3, replicationFactor: 1),
                                      TopicSpec(name: "t.out", partitions: 3, replicationFactor: 1),
                                      TopicSpec(name: config.topics.deadLetters, partitions: 1, replicationFactor: 1)])
        let producer = try KafkaProducer(config: config.kafka, logger: TestBroker.logger)
        try await producer.send((0..<300).map { OutgoingRecord(topic: "t.in", partition: Int32($0 % 3), value: Array(String($0).utf8)) })
        let runner = StageRunner(config: config, inputTopics: ["t.in"], processor: DoublingProcessor(output: "t.out"),
                                 metrics: MetricsRegistry(), health: HealthState(), logger: TestBroker.logger)
        let task = Task { try await runner.run() }
        _ = await TestBroker.eventually(timeout: .seconds(40)) { runner.stats.withLock { $0.inputs } >= 300 }
        runner.requestStop()  // what SIGTERM does through the service group
        try await task.value

        // A fresh member of the group would start exactly after the last processed record.
        let probe = try KafkaConsumer(config: config.kafka, groupID: "graceful", logger: TestBroker.logger)
        let committed = try await probe.committed((0..<3).map { TopicPartition(topic: "t.in", partition: $0) })
        #expect(committed.values.sorted() == [100, 100, 100])
        await probe.close()
    }

    @Test func metricsEndpointServesPrometheusTextAndHealth() async throws {
        let metrics = MetricsRegistry()
        metrics.increment("vigil_records_in_total", by: 3, labels: ["stage": "s", "topic": "t"], help: "Records in.")
        let health = HealthState()
        let port = try EmbeddedBroker.freePort()
        let server = MetricsServer(port: port, metrics: metrics, health: health, logger: TestBroker.logger)
        let task = Task { try await server.run() }
        defer { task.cancel() }
        _ = await TestBroker.eventually(timeout: .seconds(10)) { EmbeddedBroker.accepts(port: port) }
        func get(_ path: String) async throws -> (Int, String) {
            let (data, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)\(path)")!)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
        }
        let (status, body) = try await get("/metrics")
        #expect(status == 200)
        #expect(body.contains("# TYPE vigil_records_in_total counter"))
        #expect(body.contains("vigil_records_in_total{stage=\"s\",topic=\"t\"} 3"))
        #expect(try await get("/readyz").0 == 503)
        health.markReady()
        #expect(try await get("/readyz").0 == 200)
        #expect(try await get("/healthz").0 == 200)
        health.markDead("fatal")
        #expect(try await get("/healthz").0 == 503)
    }
}

@Suite struct StageConfigTests {
    @Test func environmentOverridesFileAndDefaults() throws {
        let file = NSTemporaryDirectory() + "vigil-config-\(UUID().uuidString).yaml"
        try """
            brokers: file-broker:9092
            topic_prefix: tenant.
            metrics_port: 9999
            kafka:
              security.protocol: SSL
            kafka.ssl.ca.location: /etc/ssl/ca.pem
            settings:
              rules: /etc/vigil/rules
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let config = try StageConfig.load(stage: "vigil-ingest", file: file,
                                          environment: ["VIGIL_BROKERS": "env-broker:9092", "VIGIL_KAFKA_SASL_MECHANISM": "PLAIN"])
        #expect(config.kafka.bootstrapServers == "env-broker:9092")
        #expect(config.topics.raw == "tenant.raw")
        #expect(config.metricsPort == 9999)
        #expect(config.kafka.properties == ["security.protocol": "SSL", "ssl.ca.location": "/etc/ssl/ca.pem", "sasl.mechanism": "PLAIN"])
        #expect(config.settings["rules"] == "/etc/vigil/rules")
        #expect(config.groupID == "vigil-ingest")
    }

    @Test func readAlignmentIsOnByDefaultAndSettable() throws {
        #expect(StageConfig(stage: "vigil-ingest").maxReadSkew == .seconds(5))
        #expect(StageConfig(stage: "vigil-enrich").maxReadSkew == .seconds(5))
        let off = try StageConfig.load(stage: "vigil-ingest", file: nil, environment: ["VIGIL_MAX_READ_SKEW_MS": "0"])
        #expect(off.maxReadSkew == nil)
        let on = try StageConfig.load(stage: "vigil-respond", file: nil, environment: ["VIGIL_MAX_READ_SKEW_MS": "2500"])
        #expect(on.maxReadSkew == .milliseconds(2500))
        let file = NSTemporaryDirectory() + "vigil-config-\(UUID().uuidString).yaml"
        try "max_read_skew_ms: -1\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(throws: ConfigError.self) { try StageConfig.load(stage: "vigil-ingest", file: file, environment: [:]) }
    }

    @Test func unknownKeysAndBadValuesAreRejected() throws {
        let file = NSTemporaryDirectory() + "vigil-config-\(UUID().uuidString).yaml"
        try "brokerz: x\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(throws: ConfigError.self) { try StageConfig.load(stage: "s", file: file, environment: [:]) }
        #expect(throws: ConfigError.self) { try StageConfig.load(stage: "s", file: "/nonexistent.yaml", environment: [:]) }
        var config = StageConfig(stage: "s")
        config.batchSize = 0
        #expect(throws: ConfigError.self) { try config.validate() }
    }

    @Test func deadLetterRecordKeepsTheInputAndNamesTheFailure() {
        let input = ConsumedRecord(topic: "vigil.raw", partition: 2, offset: 41, key: [1], value: [9, 9],
                                   headers: [KafkaHeader("vigil-source", "cloudtrail"), KafkaHeader("vigil-dlq-stage", "old")], timestamp: 77)
        let record = deadLetterRecord(stage: "vigil-ingest", topics: Topics(), input: input,
                                      letter: DeadLetter(code: "invalid_time", reason: "eventTime is missing", bytes: [1, 2], entryIndex: 3))
        #expect(record.topic == "vigil.dlq")
        #expect(record.value == [1, 2])
        #expect(record.key == [1])
        #expect(record.timestamp == 77)
        #expect(record.headers.text("vigil-source") == "cloudtrail")
        #expect(record.headers.filter { $0.name == "vigil-dlq-stage" }.map(\.text) == ["vigil-ingest"])
        #expect(record.headers.text("vigil-dlq-offset") == "41")
        #expect(record.headers.text("vigil-dlq-entry") == "3")
    }
}
