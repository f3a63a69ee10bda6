import Foundation
import Inventory
import Kafka
import Logging
import OCSF
import Pipeline
import ServiceLifecycle
import Synchronization

/// vigil-enrich: events joined with the asset inventory.
///
/// Before an event is enriched, what it says about the inventory is applied: an AWS Config item
/// creates, changes or deletes its asset, a vulnerability finding attaches or resolves open
/// vulnerabilities (``InventoryUpdates``). Each change that alters the local store is also
/// written to `<prefix>inventory`, so every other copy of the stage (each with its own SQLite
/// file, following that topic with ``InventoryFollower``) converges on the same inventory.
public struct EnrichProcessor: StageProcessor {
    let enricher: Enricher
    let store: InventoryStore?
    let topics: Topics
    let metrics: MetricsRegistry

    /// An enrich transform writing to `topics.enriched`. With a `store`, Config items and findings
    /// update it and the changes go to `topics.inventory`; without one the inventory is read-only.
    public init(enricher: Enricher, store: InventoryStore? = nil, topics: Topics, metrics: MetricsRegistry) {
        self.enricher = enricher
        self.store = store
        self.topics = topics
        self.metrics = metrics
    }

    public mutating func process(_ record: ConsumedRecord) -> StageOutput {
        switch parseObject(record, what: "event") {
        case .failure(let letter): return StageOutput(deadLetters: [letter])
        case .success(let event):
            var output = StageOutput()
            if let store {
                do {
                    for change in try InventoryUpdates.changes(for: event, store: store) where try store.apply(change) {
                        if case .upsert(let asset) = change.operation { enricher.invalidate(asset: asset) } else { enricher.invalidate(assetID: change.assetID) }
                        output.records.append(inventoryRecord(change, topics: topics))
                        metrics.increment("vigil_inventory_changes_total", labels: ["source": change.source],
                                          help: "Inventory changes applied and published, by source (awsconfig, finding, import, sync).")
                    }
                } catch {
                    // The event still flows; the change it carried is kept in the DLQ to replay.
                    output.deadLetters.append(DeadLetter(code: "inventory_update_failed", reason: error.description))
                }
            }
            let enriched = enricher.enrich(event)
            let status = enriched.value(at: "vigil.asset_status")?.stringValue ?? "unknown"
            metrics.increment("vigil_enrich_assets_total", labels: ["status": status],
                              help: "Enriched events by asset status (known, unknown, error).")
            output.records.append(eventRecord(enriched, topic: topics.enriched, headers: record.headers))
            return output
        }
    }
}

/// The `<prefix>inventory` record of a change: keyed by asset id, timestamped with the change.
public func inventoryRecord(_ change: InventoryChange, topics: Topics) -> OutgoingRecord {
    OutgoingRecord(topic: topics.inventory, key: Array(change.assetID.utf8), value: change.jsonValue.serialized(),
                   timestamp: change.time)
}

/// Keeps a local inventory file in step with `<prefix>inventory`: reads the whole topic at start
/// (``catchUp(timeout:)``, before the stage reports ready), then follows it (``run()``),
/// applying every change and invalidating the enricher's cache. It has no consumer group: every
/// copy reads every partition.
public final class InventoryFollower: Service, Sendable {
    private let kafka: KafkaConfig
    private let topic: String
    private let topics: Topics
    private let store: InventoryStore
    private let enricher: Enricher?
    private let metrics: MetricsRegistry
    private let logger: Logger
    private let consumer: KafkaConsumer
    private let stopRequested = Atomic<Bool>(false)
    private let counts = Mutex((applied: 0, unchanged: 0, invalid: 0))
    /// `nil` while loading, then success, or the error that stopped the load.
    private let loadOutcome = Mutex<Result<Void, ConfigError>?>(nil)

    /// A follower of `topics.inventory` into `store`.
    public init(kafka: KafkaConfig, topics: Topics, store: InventoryStore, enricher: Enricher?, metrics: MetricsRegistry,
                logger: Logger) throws(KafkaError) {
        self.kafka = kafka
        self.topic = topics.inventory
        self.topics = topics
        self.store = store
        self.enricher = enricher
        self.metrics = metrics
        self.logger = logger
        consumer = try KafkaConsumer(config: kafka, groupID: nil, logger: logger, partitionEOF: true)
    }

    /// Changes applied that altered the store, changes it already had, and unreadable records.
    public var applied: (applied: Int, unchanged: Int, invalid: Int) { counts.withLock { $0 } }

    /// Creates the topic when it is missing (compacted, as `vigil topics create` would), assigns
    /// every partition from the beginning and applies records until each partition reaches its
    /// end. Returns how many records were read.
    @discardableResult
    public func catchUp(timeout: Duration = .seconds(300)) async throws -> Int {
        let admin = try KafkaAdmin(config: kafka, logger: logger)
        var metadata = try await admin.listTopics().first { $0.name == topic }
        if metadata == nil {
            if let spec = topics.specs().first(where: { $0.name == topic }) { _ = try await admin.createTopics([spec]) }
            for _ in 0..<50 where metadata == nil {
                try await Task.sleep(for: .milliseconds(200))
                metadata = try await admin.listTopics().first { $0.name == topic }
            }
        }
        guard let metadata else { throw ConfigError("topic \(topic) does not exist and could not be created") }
        try consumer.assign(metadata.partitions.map {
            TopicPartitionOffset(TopicPartition(topic: topic, partition: $0), offset: KafkaConsumer.beginning)
        })
        var open = Set(metadata.partitions)
        var read = 0
        let deadline = ContinuousClock.now + timeout
        while !open.isEmpty {
            guard ContinuousClock.now < deadline else { throw ConfigError("reading \(topic) did not reach its end within \(timeout)") }
            let batch = try await consumer.poll(maxRecords: 1000, timeout: .milliseconds(200))
            for record in batch.records {
                await apply(record)
                read += 1
            }
            for end in batch.endOfPartition { open.remove(end.topicPartition.partition) }
        }
        let totals = applied
        logger.info("inventory loaded from topic", metadata: [
            "topic": .string(topic), "records": "\(read)", "applied": "\(totals.applied)", "invalid": "\(totals.invalid)",
        ])
        return read
    }

    /// Waits until ``run()`` has read the whole topic once; throws if that failed.
    public func waitUntilLoaded() async throws {
        while true {
            switch loadOutcome.withLock({ $0 }) {
            case .success?: return
            case .failure(let error)?: throw error
            case nil: try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Reads the whole topic (``catchUp(timeout:)``), then follows it until the service group
    /// shuts down.
    public func run() async throws {
        do {
            try await catchUp()
            loadOutcome.withLock { $0 = .success(()) }
        } catch {
            loadOutcome.withLock { $0 = .failure(ConfigError("loading the inventory topic failed: \(error)")) }
            await consumer.close()
            throw error
        }
        try await withGracefulShutdownHandler {
            while !stopRequested.load(ordering: .relaxed) && !Task.isCancelled {
                let batch: ConsumerBatch
                do throws(KafkaError) {
                    batch = try await consumer.poll(maxRecords: 1000, timeout: .milliseconds(200))
                } catch {
                    if error.isFatal { throw error }
                    logger.warning("inventory poll failed; retrying", metadata: ["error": .string(error.description)])
                    try? await Task.sleep(for: .seconds(1))
                    continue
                }
                for record in batch.records { await apply(record) }
            }
        } onGracefulShutdown: { [self] in
            stopRequested.store(true, ordering: .relaxed)
        }
        await consumer.close()
    }

    /// Applies one record; a record that is not a change is counted and logged, never fatal.
    func apply(_ record: ConsumedRecord) async {
        let change: InventoryChange
        do {
            change = try InventoryChange(json: try JSON.parse(record.value))
        } catch {
            counts.withLock { $0.invalid += 1 }
            metrics.increment("vigil_inventory_invalid_records_total", help: "Records on the inventory topic that are not inventory changes.")
            logger.warning("unreadable inventory record", metadata: ["partition": "\(record.partition)", "offset": "\(record.offset)"])
            return
        }
        for attempt in 1...5 {
            do {
                let changed = try store.apply(change)
                counts.withLock { if changed { $0.applied += 1 } else { $0.unchanged += 1 } }
                if changed, let enricher {
                    if case .upsert(let asset) = change.operation { enricher.invalidate(asset: asset) } else { enricher.invalidate(assetID: change.assetID) }
                }
                metrics.increment("vigil_inventory_followed_total", labels: ["result": changed ? "applied" : "unchanged"],
                                  help: "Inventory topic records applied to the local inventory.")
                return
            } catch where error.isRetriable && attempt < 5 {
                // A busy SQLite file (another process importing): back off without holding a thread.
                try? await Task.sleep(for: .milliseconds(50 * attempt))
            } catch {
                counts.withLock { $0.invalid += 1 }
                logger.error("inventory change not applied", metadata: ["asset": .string(change.assetID), "error": .string(error.description)])
                return
            }
        }
    }
}

/// Writes inventory changes made outside the stages (an import, an AWS sync) to `<prefix>inventory`.
public enum InventoryPublisher {
    /// Produces every change and waits for the broker to acknowledge each; returns how many.
    @discardableResult
    public static func publish(_ changes: [InventoryChange], kafka: KafkaConfig, topics: Topics, logger: Logger) async throws -> Int {
        guard !changes.isEmpty else { return 0 }
        let producer = try KafkaProducer(config: kafka, logger: logger)
        do {
            let reports = try await producer.send(changes.map { inventoryRecord($0, topics: topics) })
            await producer.close()
            return reports.count
        } catch {
            await producer.close()
            throw error
        }
    }
}
