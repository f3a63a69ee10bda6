import Foundation
import Kafka
import Pipeline
import TestSupport
import Testing

@Suite(.enabled(if: TestBroker.isAvailable, "tansu broker not installed (run scripts/setup)"))
struct KafkaIntegrationTests {
    @Test func adminCreatesAndListsTopics() async throws {
        let broker = try await TestBroker.start()
        let admin = try KafkaAdmin(config: TestBroker.config(broker), logger: TestBroker.logger)
        let created = try await admin.createTopics([TopicSpec(name: "t.one", partitions: 3, replicationFactor: 1),
                                                    TopicSpec(name: "t.compact", partitions: 1, replicationFactor: 1,
                                                              configs: ["cleanup.policy": "compact"])])
        #expect(Set(created) == ["t.one", "t.compact"])
        // Creating again is not an error and creates nothing.
        let again = try await admin.createTopics([TopicSpec(name: "t.one", partitions: 3, replicationFactor: 1)])
        #expect(again.isEmpty)
        let topics = try await admin.listTopics()
        #expect(topics.first(where: { $0.name == "t.one" })?.partitions == [0, 1, 2])
        #expect(topics.contains(where: { $0.name == "t.compact" }))
    }

    @Test func roundTripKeepsKeysHeadersAndTimestamps() async throws {
        let broker = try await TestBroker.start()
        let config = TestBroker.config(broker)
        let admin = try KafkaAdmin(config: config, logger: TestBroker.logger)
        try await admin.createTopics([TopicSpec(name: "rt", partitions: 2, replicationFactor: 1)])
        let producer = try KafkaProducer(config: config, logger: TestBroker.logger)
        let records = (0..<50).map { index in
            OutgoingRecord(topic: "rt", key: Array("key-\(index % 5)".utf8), value: Array("value-\(index)".utf8),
                           headers: [KafkaHeader("vigil-source", "cloudtrail"), KafkaHeader(name: "empty", value: nil)],
                           timestamp: 1_700_000_000_000 + Int64(index))
        }
        let reports = try await producer.send(records)
        #expect(reports.count == 50)
        #expect(reports.allSatisfy { $0.offset >= 0 && $0.topic == "rt" })
        // Same key, same partition.
        let byKey = Dictionary(grouping: zip(records, reports), by: { $0.0.key! })
        for (_, pairs) in byKey { #expect(Set(pairs.map { $0.1.partition }).count == 1) }
        await producer.close()

        let consumed = try await TestBroker.readAll(broker, topic: "rt", partitions: 2, atLeast: 50)
        #expect(consumed.count == 50)
        let first = try #require(consumed.first(where: { $0.value == Array("value-7".utf8) }))
        #expect(first.key == Array("key-2".utf8))
        #expect(first.timestamp == 1_700_000_000_007)
        #expect(first.headers.text("vigil-source") == "cloudtrail")
        #expect(first.headers.contains(KafkaHeader(name: "empty", value: nil)))
        // Order within a partition is the produce order.
        for partition in Int32(0)..<2 {
            let offsets = consumed.filter { $0.partition == partition }.map(\.offset)
            #expect(offsets == offsets.sorted())
        }
    }

    @Test func oversizedRecordFailsAloneWhileItsBatchSiblingsAreDelivered() async throws {
        let broker = try await TestBroker.start()
        var config = TestBroker.config(broker)
        config.properties["message.max.bytes"] = "100000"
        let admin = try KafkaAdmin(config: config, logger: TestBroker.logger)
        try await admin.createTopics([TopicSpec(name: "big", partitions: 1, replicationFactor: 1)])
        let producer = try KafkaProducer(config: config, logger: TestBroker.logger)
        let results = try await producer.sendEach([
            OutgoingRecord(topic: "big", value: Array("small-1".utf8)),
            OutgoingRecord(topic: "big", value: [UInt8](repeating: 65, count: 200_000)),
            OutgoingRecord(topic: "big", value: Array("small-2".utf8)),
        ])
        #expect((try? results[0].get()) != nil)
        #expect((try? results[2].get()) != nil)
        guard case .failure(let error) = results[1] else { Issue.record("an oversized record was delivered"); return }
        #expect(error.name == "MSG_SIZE_TOO_LARGE")
        #expect(!error.isRetriable)
        await producer.close()
    }

    @Test func groupSplitsPartitionsAndTakesOverWhenAMemberLeaves() async throws {
        let broker = try await TestBroker.start()
        let config = TestBroker.config(broker)
        let admin = try KafkaAdmin(config: config, logger: TestBroker.logger)
        try await admin.createTopics([TopicSpec(name: "grp", partitions: 4, replicationFactor: 1)])
        let producer = try KafkaProducer(config: config, logger: TestBroker.logger)
        try await producer.send((0..<40).map { OutgoingRecord(topic: "grp", partition: Int32($0 % 4), value: Array("\($0)".utf8)) })

        let first = try KafkaConsumer(config: config, groupID: "g1", logger: TestBroker.logger)
        let second = try KafkaConsumer(config: config, groupID: "g1", logger: TestBroker.logger)
        try first.subscribe(["grp"])
        try second.subscribe(["grp"])
        var seen: [String: Set<Int32>] = ["first": [], "second": []]
        let split = await TestBroker.eventually(timeout: .seconds(40)) {
            for (name, consumer) in [("first", first), ("second", second)] {
                let batch = (try? await consumer.poll(maxRecords: 100, timeout: .milliseconds(100))) ?? ConsumerBatch(records: [], endOfPartition: [])
                for record in batch.records {
                    seen[name, default: []].insert(record.partition)
                    try? consumer.store([TopicPartitionOffset(TopicPartition(topic: record.topic, partition: record.partition), offset: record.offset + 1)])
                }
            }
            let a = (try? first.assignment()) ?? []
            let b = (try? second.assignment()) ?? []
            return a.count == 2 && b.count == 2 && Set(a).isDisjoint(with: Set(b))
        }
        #expect(split, "both members own two partitions each")

        await second.close()
        let tookOver = await TestBroker.eventually(timeout: .seconds(40)) {
            _ = try? await first.poll(maxRecords: 100, timeout: .milliseconds(100))
            return ((try? first.assignment()) ?? []).count == 4
        }
        #expect(tookOver, "the remaining member owns all four partitions")
        await first.close()
        await producer.close()
    }

    @Test func storedOffsetsAreCommittedAndResumeWhereTheyStopped() async throws {
        let broker = try await TestBroker.start()
        let config = TestBroker.config(broker)
        let admin = try KafkaAdmin(config: config, logger: TestBroker.logger)
        try await admin.createTopics([TopicSpec(name: "commit", partitions: 1, replicationFactor: 1)])
        let producer = try KafkaProducer(config: config, logger: TestBroker.logger)
        try await producer.send((0..<10).map { OutgoingRecord(topic: "commit", partition: 0, value: Array("\($0)".utf8)) })

        let consumer = try KafkaConsumer(config: config, groupID: "g-commit", logger: TestBroker.logger)
        try consumer.subscribe(["commit"])
        var records: [ConsumedRecord] = []
        _ = await TestBroker.eventually(timeout: .seconds(120)) {
            records += (try? await consumer.poll(maxRecords: 100, timeout: .milliseconds(100)).records) ?? []
            return records.count >= 10
        }
        try #require(records.count == 10)
        // Only the first 6 are "processed".
        try consumer.store([TopicPartitionOffset(TopicPartition(topic: "commit", partition: 0), offset: records[5].offset + 1)])
        try await consumer.commit()
        let committed = try await consumer.committed([TopicPartition(topic: "commit", partition: 0)])
        #expect(committed[TopicPartition(topic: "commit", partition: 0)] == records[5].offset + 1)
        await consumer.close()

        let again = try KafkaConsumer(config: config, groupID: "g-commit", logger: TestBroker.logger)
        try again.subscribe(["commit"])
        var resumed: [ConsumedRecord] = []
        _ = await TestBroker.eventually {
            resumed += (try? await again.poll(maxRecords: 100, timeout: .milliseconds(100)).records) ?? []
            return resumed.count >= 4
        }
        #expect(resumed.map(\.value) == records[6...].map(\.value))
        await again.close()
        await producer.close()
    }

    @Test func seekOffsetsForTimesPauseAndEndOfPartition() async throws {
        let broker = try await TestBroker.start()
        let config = TestBroker.config(broker)
        let admin = try KafkaAdmin(config: config, logger: TestBroker.logger)
        try await admin.createTopics([TopicSpec(name: "seek", partitions: 1, replicationFactor: 1)])
        let producer = try KafkaProducer(config: config, logger: TestBroker.logger)
        for index in 0..<10 {
            try await producer.send(OutgoingRecord(topic: "seek", partition: 0, value: Array("\(index)".utf8), timestamp: 1_000_000 + Int64(index) * 1000))
        }
        let tp = TopicPartition(topic: "seek", partition: 0)
        let consumer = try KafkaConsumer(config: config, groupID: nil, logger: TestBroker.logger, partitionEOF: true)
        let times = try await consumer.offsetsForTimes([tp: 1_005_000])
        let start = try #require(times[tp])
        // Brokers may answer with an earlier offset; never a later one.
        #expect(start >= 0 && start <= 5)
        try consumer.assign([TopicPartitionOffset(tp, offset: start)])
        var records: [ConsumedRecord] = []
        var reachedEnd = false
        _ = await TestBroker.eventually {
            let batch = (try? await consumer.poll(maxRecords: 100, timeout: .milliseconds(100))) ?? ConsumerBatch(records: [], endOfPartition: [])
            records += batch.records
            if batch.endOfPartition.contains(where: { $0.topicPartition == tp }) { reachedEnd = true }
            return reachedEnd
        }
        #expect(reachedEnd)
        // Skip what is older than asked, as replays do: exactly records 5...9 remain.
        #expect(records.filter { ($0.timestamp ?? 0) >= 1_005_000 }.map { String(decoding: $0.value, as: UTF8.self) } == ["5", "6", "7", "8", "9"])

        try await consumer.seek([TopicPartitionOffset(tp, offset: records.last!.offset)])
        try consumer.pause([tp])
        let paused = try await consumer.poll(maxRecords: 10, timeout: .milliseconds(500))
        #expect(paused.records.isEmpty)
        try consumer.resume([tp])
        var afterSeek: [ConsumedRecord] = []
        _ = await TestBroker.eventually(timeout: .seconds(10)) {
            afterSeek += (try? await consumer.poll(maxRecords: 10, timeout: .milliseconds(100)).records) ?? []
            return !afterSeek.isEmpty
        }
        #expect(afterSeek.first.map { String(decoding: $0.value, as: UTF8.self) } == "9")
        await consumer.close()
        await producer.close()
    }
}

@Suite struct KafkaConfigTests {
    @Test func environmentPassesPropertiesThrough() {
        let config = KafkaConfig.fromEnvironment([
            "VIGIL_BROKERS": "k1:9092,k2:9092",
            "VIGIL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "VIGIL_KAFKA_SASL_MECHANISM": "PLAIN",
            "UNRELATED": "x",
        ])
        #expect(config.bootstrapServers == "k1:9092,k2:9092")
        #expect(config.properties == ["security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN"])
    }

    @Test func invalidPropertyIsAClearErrorWithoutTheSecret() {
        let config = KafkaConfig(properties: ["sasl.password": "hunter2", "no.such.property": "1"])
        do {
            _ = try KafkaProducer(config: config, logger: TestBroker.logger)
            Issue.record("accepted an unknown property")
        } catch {
            #expect(error.description.contains("no.such.property"))
            #expect(!error.description.contains("hunter2"))
            #expect(!error.isRetriable)
        }
    }
}
