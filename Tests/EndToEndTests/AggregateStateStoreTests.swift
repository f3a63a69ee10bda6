import Foundation
import Kafka
import Pipeline
import Stages
import TestSupport
import Testing

/// The detect aggregate step's snapshot store on a real broker: what a new owner of a partials
/// partition finds in the state topic.
@Suite(.enabled(if: Binaries.available, "broker or built executables missing (run make test)"), .timeLimit(.minutes(5)))
struct AggregateStateStoreTests {
    /// Bytes that are easy to tell apart and span several chunks.
    static func bytes(_ seed: UInt8, count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31) &+ seed }
    }

    @Test("the complete snapshot with the highest offset is found; torn and foreign ones are not")
    func latestCompleteSnapshot() async throws {
        let broker = try await TestBroker.start()
        defer { broker.stop() }
        let config = TestBroker.config(broker)
        let topics = Topics(prefix: "st.")
        let store = try await AggregateStateStore.open(kafka: config, topics: topics, logger: TestBroker.logger)
        #expect(store.topic == topics.detectState)
        let source = TopicPartition(topic: topics.detectPartials, partition: 1)
        let other = TopicPartition(topic: topics.detectPartials, partition: 1 + store.partitions)  // same state partition
        #expect(try await store.latest(for: source)?.next == nil)

        let producer = try KafkaProducer(config: config, logger: TestBroker.logger)
        let chunk = AggregateStateStore.chunkBytes
        // Generation 1 (offset 100, three chunks), then 2 (offset 250, two chunks).
        let first = Self.bytes(1, count: 2 * chunk + 10)
        let second = Self.bytes(2, count: chunk + 1)
        _ = try await producer.send(store.records(source: source, next: 100, generation: 1, slot: 0, bytes: first))
        _ = try await producer.send(store.records(source: source, next: 250, generation: 2, slot: 1, bytes: second))
        // Generation 3 torn: the copy died after its first chunk.
        let torn = store.records(source: source, next: 400, generation: 3, slot: 0, bytes: Self.bytes(3, count: 2 * chunk))
        #expect(torn.count == 2)
        _ = try await producer.send([torn[0]])
        // Another partials partition sharing the state partition, with a higher offset.
        _ = try await producer.send(store.records(source: other, next: 900, generation: 4, slot: 0, bytes: Self.bytes(4, count: 20)))

        let found = try #require(try await store.latest(for: source))
        #expect(found.next == 250)
        #expect(found.generation == 2)
        #expect(found.slot == 1)
        #expect(found.bytes == second)
        let foreign = try #require(try await store.latest(for: other))
        #expect(foreign.next == 900)

        // Past the span first read (256 records): the reader reads further back.
        var filler: [OutgoingRecord] = []
        for index in 0..<600 {
            let next = Int64(1000 + index)
            let generation = Int64(10 + index)
            let bytes: [UInt8] = [UInt8(index % 250)]
            filler += store.records(source: other, next: next, generation: generation, slot: index % 2, bytes: bytes)
        }
        _ = try await producer.send(filler)
        let again = try #require(try await store.latest(for: source))
        #expect(again.next == 250)
        #expect(again.bytes == second)
        await producer.close()
    }
}
