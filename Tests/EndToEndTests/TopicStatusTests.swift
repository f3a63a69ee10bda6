import Foundation
import Kafka
import OCSF
import Pipeline
import Stages
import TestSupport
import Testing

@Suite(.enabled(if: TestBroker.isAvailable), .timeLimit(.minutes(6)))
struct TopicStatusTests {
    @Test("describe: records per partition and the stage group's lag, before and after it commits")
    func lagOfTheIngestGroup() async throws {
        let broker = try await TestBroker.start()
        defer { broker.stop() }
        let topics = Topics(prefix: "status.")
        let config = TestBroker.config(broker)
        try await KafkaAdmin(config: config, logger: TestBroker.logger).createTopics(topics.specs(partitions: 2, replicationFactor: 1))
        // One send per record: the local broker reports high watermarks in batches, not records
        // (real Kafka counts records); single-record batches make both agree.
        let producer = try KafkaProducer(config: config, logger: TestBroker.logger)
        for index in 0..<10 {
            try await producer.send([OutgoingRecord(topic: topics.raw, partition: Int32(index % 2), value: Array("r\(index)".utf8))])
        }
        await producer.close()

        // A scan reads to each partition's end whatever the watermarks say.
        var scanned: [String] = []
        try await TopicScan.read(topics.raw, config: config, logger: TestBroker.logger) { scanned.append(String(decoding: $0.value, as: UTF8.self)) }
        #expect(scanned.sorted() == (0..<10).map { "r\($0)" }.sorted())
        // Also when many records travel in one batch (where the local broker's watermark says 1).
        let batched = try KafkaProducer(config: config, logger: TestBroker.logger)
        try await batched.send((0..<10).map { OutgoingRecord(topic: topics.commands, partition: 0, value: Array("c\($0)".utf8)) })
        await batched.close()
        var commands = 0
        try await TopicScan.read(topics.commands, config: config, logger: TestBroker.logger) { _ in commands += 1 }
        #expect(commands == 10)

        let groups = TopicStatus.groups(topics, overrides: ["alerts": "responders"])
        #expect(groups[topics.raw] == "vigil-ingest")
        #expect(groups[topics.alerts] == "responders")
        #expect(groups[topics.commandResults] == nil)
        let before = try await TopicStatus.describe(topics, config: config, groups: groups, logger: TestBroker.logger)
        let raw = before.filter { $0.topic == topics.raw }
        #expect(raw.map(\.records) == [5, 5])
        #expect(raw.map(\.lag) == [5, 5], "nothing committed yet: everything kept is lag")
        #expect(before.first { $0.topic == topics.commandResults }?.lag == nil, "no stage consumes command-results")

        // The ingest group commits 3 of partition 0.
        let consumer = try KafkaConsumer(config: config, groupID: "vigil-ingest", logger: TestBroker.logger)
        try consumer.assign([TopicPartitionOffset(TopicPartition(topic: topics.raw, partition: 0), offset: KafkaConsumer.beginning)])
        try consumer.store([TopicPartitionOffset(TopicPartition(topic: topics.raw, partition: 0), offset: 3)])
        try await consumer.commit()
        await consumer.close()

        let after = try await TopicStatus.describe(topics, config: config, groups: groups, logger: TestBroker.logger)
        let rawAfter = after.filter { $0.topic == topics.raw }
        #expect(rawAfter.map(\.committed) == [3, nil])
        #expect(rawAfter.map(\.lag) == [2, 5])
    }
}
