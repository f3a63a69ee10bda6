import AWS
import Foundation
import Kafka
import Logging
import Pipeline
import Synchronization

/// Settings of one S3 shipper, with documented defaults.
public struct S3ShipperConfig: Sendable, Equatable {
    /// The bucket to read.
    public var bucket: String
    /// The SQLite checkpoint file.
    public var checkpointPath: String
    /// Only keys under this prefix are listed (default `AWSLogs/`, where CloudTrail, VPC Flow
    /// Logs and AWS Config deliver). Empty lists the whole bucket.
    public var prefix: String = "AWSLogs/"
    /// The `vigil-source` for keys outside the AWS log layout (see `S3KeyLayout`); `nil` (the
    /// default) leaves such keys alone and reports them. Never overrides an inferred source.
    public var source: String?
    /// Topic names; records go to `topics.raw`.
    public var topics = Topics()
    /// Objects larger than this many bytes are recorded as skipped, not produced. Default
    /// 1,000,000, librdkafka's `message.max.bytes` default; the brokers' limit must allow it.
    public var maxRecordSize: Int = 1_000_000
    /// Keys per `ListObjectsV2` page (default 1000, the S3 maximum).
    public var pageSize: Int = 1000
    /// Objects fetched at once (default 8). Memory holds at most this many objects.
    public var parallelFetches: Int = 8

    /// Settings for a bucket and a checkpoint file, defaults otherwise.
    public init(bucket: String, checkpointPath: String) {
        self.bucket = bucket
        self.checkpointPath = checkpointPath
    }

    /// Rejects settings that cannot work.
    public func validate() throws(ConfigError) {
        if bucket.isEmpty || bucket.contains("/") || bucket.count > 255 {
            throw ConfigError("s3: bucket must be a bucket name (no slash, at most 255 characters)")
        }
        if checkpointPath.isEmpty { throw ConfigError("s3: checkpoint path is empty") }
        if let source, source.trimmingCharacters(in: .whitespaces).isEmpty { throw ConfigError("s3: source is empty") }
        if maxRecordSize < 1 { throw ConfigError("s3: max record size must be positive") }
        if !(1...1000).contains(pageSize) { throw ConfigError("s3: page size must be 1...1000") }
        if !(1...64).contains(parallelFetches) { throw ConfigError("s3: parallel fetches must be 1...64") }
    }
}

/// What one poll did. Every listed object is counted once in one of the other fields, unless
/// the poll was interrupted or failed before it got to the object.
public struct S3ShipSummary: Sendable, Equatable {
    /// Objects listed under the prefix.
    public var listed = 0
    /// Objects produced, acknowledged and recorded.
    public var shipped = 0
    /// Bytes of the shipped objects.
    public var shippedBytes = 0
    /// Objects larger than the maximum record size, recorded as skipped.
    public var skippedTooLarge = 0
    /// Objects already in the checkpoint with the same etag.
    public var alreadyDone = 0
    /// Objects ignored by design: CloudTrail digests, AWS Config's writability check file.
    public var ignored = 0
    /// Objects outside the known layouts (and no fallback source); not recorded.
    public var unrecognized = 0
    /// Objects that could not be fetched (access denied, throttled, ...); not recorded, tried
    /// again at the next poll.
    public var failed = 0
    /// Objects deleted between listing and fetching; not recorded.
    public var vanished = 0
    /// Whether `stop()` or cancellation ended the poll before the listing was done.
    public var interrupted = false

    /// An empty summary.
    public init() {}
}

/// Ships the log objects AWS delivers to an S3 bucket into `<prefix>raw`, once each.
///
/// Each poll lists the bucket under the prefix page by page. For each page it looks the keys up
/// in the checkpoint, infers each new object's source from its key (`S3KeyLayout`), fetches up
/// to `parallelFetches` objects at a time, produces each as one record (key `s3://bucket/key`,
/// header `vigil-source`, value = the object's bytes as stored, gzip included: ingest inflates),
/// waits for the broker's acknowledgements, and only then records the acknowledged objects. A
/// restart therefore never skips an object and repeats only those in flight at a crash
/// (at-least-once; ingest's deterministic event ids make the repeat harmless).
///
/// Objects over `maxRecordSize` (by the listed size, so they are never downloaded) are recorded
/// as `skipped_too_large` and logged; raising the limit later ships them.
public final class S3Shipper: Sendable {
    /// The settings.
    public let config: S3ShipperConfig
    /// The checkpoint this shipper records in.
    public let checkpoint: S3Checkpoint
    private let client: AWSClient
    private let producer: KafkaProducer
    private let logger: Logger
    private let stopRequested = Atomic<Bool>(false)
    private let lastUnrecognized = Atomic<Int>(0)

    /// Makes a shipper; validates the settings and opens (and migrates) the checkpoint file.
    public init(config: S3ShipperConfig, client: AWSClient, producer: KafkaProducer, logger: Logger) throws(ShippingError) {
        do {
            try config.validate()
        } catch {
            throw ShippingError(code: "invalid_config", reason: error.reason)
        }
        self.config = config
        self.client = client
        self.producer = producer
        self.checkpoint = try S3Checkpoint(path: config.checkpointPath)
        var logger = logger
        logger[metadataKey: "bucket"] = .string(config.bucket)
        self.logger = logger
    }

    /// Asks a running poll or loop to stop after the objects in flight are acknowledged and
    /// recorded. Task cancellation does the same.
    public func stop() { stopRequested.store(true, ordering: .relaxed) }

    private var shouldStop: Bool { stopRequested.load(ordering: .relaxed) || Task.isCancelled }

    /// Lists, ships and records everything new under the prefix; `progress` sees the running
    /// summary after each batch. A listing, produce or checkpoint failure ends the poll (what
    /// was recorded stays recorded); an object that cannot be fetched is counted in `failed`
    /// and the poll goes on.
    @discardableResult
    public func pollOnce(progress: @Sendable (S3ShipSummary) -> Void = { _ in }) async throws(ShippingError) -> S3ShipSummary {
        var summary = S3ShipSummary()
        var token: String?
        var example: String?
        repeat {
            if shouldStop {
                summary.interrupted = true
                break
            }
            let page: S3ListPage
            do {
                page = try await client.listObjectsV2(bucket: config.bucket, prefix: config.prefix,
                                                      continuationToken: token, maxKeys: config.pageSize)
            } catch {
                throw .aws("list_failed", error, "cannot list bucket \(config.bucket)")
            }
            summary.listed += page.objects.count
            let unrecognizedBefore = summary.unrecognized
            try await ship(page: page.objects, summary: &summary, progress: progress)
            if summary.unrecognized > unrecognizedBefore, example == nil {
                example = page.objects.first { S3KeyLayout.disposition(ofKey: $0.key, fallbackSource: config.source) == .unrecognized }?.key
            }
            token = page.nextToken
        } while token != nil
        // Said once, not at every poll, unless the number changes.
        if !summary.interrupted, lastUnrecognized.exchange(summary.unrecognized, ordering: .relaxed) != summary.unrecognized,
           summary.unrecognized > 0 {
            logger.warning("s3 objects outside the AWS log layouts are left alone; give a source to ship them", metadata: [
                "count": "\(summary.unrecognized)", "example_key": .string(example ?? ""),
            ])
        }
        logger.info("s3 poll done", metadata: [
            "listed": "\(summary.listed)", "shipped": "\(summary.shipped)", "skipped_too_large": "\(summary.skippedTooLarge)",
            "already_done": "\(summary.alreadyDone)", "ignored": "\(summary.ignored)", "failed": "\(summary.failed)",
        ])
        return summary
    }

    /// Polls once (`once`), or every `interval` until `stop()` or cancellation; `onPoll` sees
    /// each poll's summary and `progress` the running summary within a poll. In the loop,
    /// retriable failures (throttling, network, broker, a busy checkpoint) are logged and
    /// tried again at the next poll; others end it.
    public func run(once: Bool, interval: Duration = .seconds(60),
                    progress: @Sendable (S3ShipSummary) -> Void = { _ in },
                    onPoll: @Sendable (S3ShipSummary) -> Void = { _ in }) async throws(ShippingError) {
        if once {
            onPoll(try await pollOnce(progress: progress))
            return
        }
        while !shouldStop {
            do {
                onPoll(try await pollOnce(progress: progress))
            } catch where error.isRetriable {
                logger.warning("s3 poll failed; trying again at the next poll", metadata: ["error": "\(error)"])
            }
            let wake = ContinuousClock.now + interval
            while !shouldStop && ContinuousClock.now < wake {
                try? await Task.sleep(for: min(.milliseconds(200), wake - ContinuousClock.now))
            }
        }
    }

    // MARK: One listing page

    private func ship(page objects: [S3Object], summary: inout S3ShipSummary,
                      progress: @Sendable (S3ShipSummary) -> Void) async throws(ShippingError) {
        let recorded = try await checkpoint.entries(bucket: config.bucket, keys: objects.map(\.key))
        var pending: [(object: S3Object, source: String)] = []
        var tooLarge: [S3CheckpointEntry] = []
        for object in objects {
            if let entry = recorded[object.key], entry.etag == object.etag,
               entry.outcome == .shipped || entry.size > config.maxRecordSize {
                summary.alreadyDone += 1
                continue
            }
            switch S3KeyLayout.disposition(ofKey: object.key, fallbackSource: config.source) {
            case .ignore:
                summary.ignored += 1
            case .unrecognized:
                summary.unrecognized += 1
            case .ship(let source):
                if object.size > config.maxRecordSize {
                    tooLarge.append(S3CheckpointEntry(key: object.key, etag: object.etag, size: object.size, outcome: .skippedTooLarge))
                } else {
                    pending.append((object, source))
                }
            }
        }
        if !tooLarge.isEmpty {
            try await checkpoint.record(bucket: config.bucket, tooLarge)
            for entry in tooLarge { reportTooLarge(key: entry.key, size: entry.size) }
            summary.skippedTooLarge += tooLarge.count
            progress(summary)
        }
        var start = 0
        while start < pending.count {
            if shouldStop {
                summary.interrupted = true
                return
            }
            let batch = Array(pending[start..<min(start + config.parallelFetches, pending.count)])
            start += batch.count
            try await ship(batch: batch, summary: &summary)
            progress(summary)
        }
    }

    /// Fetches a batch concurrently, produces what was fetched, records what was acknowledged.
    private func ship(batch: [(object: S3Object, source: String)], summary: inout S3ShipSummary) async throws(ShippingError) {
        let fetched = await fetch(batch.map(\.object.key))
        var records: [OutgoingRecord] = []
        var sent: [(object: S3Object, size: Int)] = []
        var tooLarge: [S3CheckpointEntry] = []
        for (index, item) in batch.enumerated() {
            switch fetched[index] {
            case .success(let body):
                // The listing's size can be stale if the object was rewritten since.
                if body.count > config.maxRecordSize {
                    tooLarge.append(S3CheckpointEntry(key: item.object.key, etag: item.object.etag, size: body.count, outcome: .skippedTooLarge))
                    continue
                }
                records.append(OutgoingRecord(topic: config.topics.raw, key: Array(Self.recordKey(bucket: config.bucket, key: item.object.key).utf8),
                                              value: body, headers: [KafkaHeader(VigilHeader.source, item.source)]))
                sent.append((item.object, body.count))
            case .failure(let error) where error.code == "NoSuchKey":
                // Deleted (a lifecycle rule) between listing and fetching: nothing left to ship.
                logger.warning("s3 object vanished before it could be fetched", metadata: ["key": .string(item.object.key)])
                summary.vanished += 1
            case .failure(let error):
                logger.error("s3 object cannot be fetched; trying again at the next poll", metadata: [
                    "key": .string(item.object.key), "error": "\(error)",
                ])
                summary.failed += 1
            }
        }
        let outcomes: [Result<DeliveryReport, KafkaError>]
        do {
            outcomes = try await producer.sendEach(records)
        } catch {
            throw .kafka(error, "cannot produce objects of bucket \(config.bucket) to \(config.topics.raw)")
        }
        var shipped: [S3CheckpointEntry] = []
        var firstFailure: KafkaError?
        for (index, outcome) in outcomes.enumerated() {
            let (object, size) = sent[index]
            switch outcome {
            case .success:
                shipped.append(S3CheckpointEntry(key: object.key, etag: object.etag, size: size, outcome: .shipped))
            case .failure(let error) where error.name == "MSG_SIZE_TOO_LARGE":
                // Over the producer's or the broker's message.max.bytes (the record adds its
                // key and headers to the object): the same as over maxRecordSize.
                tooLarge.append(S3CheckpointEntry(key: object.key, etag: object.etag, size: size, outcome: .skippedTooLarge))
            case .failure(let error):
                if firstFailure == nil { firstFailure = error }
            }
        }
        // What was acknowledged is recorded even when other records failed, so the next
        // attempt sends only the failed ones.
        try await checkpoint.record(bucket: config.bucket, tooLarge + shipped)
        summary.shipped += shipped.count
        summary.shippedBytes += shipped.reduce(0) { $0 + $1.size }
        for entry in tooLarge { reportTooLarge(key: entry.key, size: entry.size) }
        summary.skippedTooLarge += tooLarge.count
        if let firstFailure {
            throw .kafka(firstFailure, "cannot produce objects of bucket \(config.bucket) to \(config.topics.raw)")
        }
    }

    private func fetch(_ keys: [String]) async -> [Result<[UInt8], AWSError>] {
        let client = self.client
        let bucket = config.bucket
        return await withTaskGroup(of: (Int, Result<[UInt8], AWSError>).self) { group in
            for (index, key) in keys.enumerated() {
                group.addTask {
                    do throws(AWSError) {
                        return (index, .success(try await client.getObject(bucket: bucket, key: key)))
                    } catch {
                        return (index, .failure(error))
                    }
                }
            }
            var results = [Result<[UInt8], AWSError>](repeating: .failure(AWSError(code: "not_fetched")), count: keys.count)
            for await (index, result) in group { results[index] = result }
            return results
        }
    }

    private func reportTooLarge(key: String, size: Int) {
        logger.warning("s3 object larger than the maximum record size; recorded as skipped", metadata: [
            "key": .string(key), "size": "\(size)", "max_record_size": "\(config.maxRecordSize)",
        ])
    }

    /// The record key of an object: `s3://bucket/key`.
    public static func recordKey(bucket: String, key: String) -> String { "s3://\(bucket)/\(key)" }
}
