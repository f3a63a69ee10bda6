import CRdKafka
import Dispatch
import Logging
import Synchronization

/// Our code that runs inside a consumer-group rebalance, on the consumer's poll thread,
/// before librdkafka applies it: this is where a stage stores and commits offsets for
/// partitions that are being taken away (the reason Vigil does not let librdkafka rebalance
/// on its own).
public protocol RebalanceListener: Sendable {
    /// Partitions newly assigned to this member; called before they are fetched.
    func partitionsAssigned(_ partitions: [TopicPartition], actions: RebalanceActions)
    /// Partitions about to be taken away; called while they are still owned, so offsets
    /// stored and committed here are the group's.
    func partitionsRevoked(_ partitions: [TopicPartition], actions: RebalanceActions)
}

/// What a rebalance listener may do while the rebalance waits for it.
///
/// `@unchecked Sendable`: it holds a borrowed `rd_kafka_t` address that is valid while the
/// callback runs (the consumer that owns it is inside `poll`); it is not meant to be kept.
public struct RebalanceActions: @unchecked Sendable {
    let handle: OpaquePointer

    /// Stores offsets (the next offset to read) for a later commit.
    public func store(_ offsets: [TopicPartitionOffset]) throws(KafkaError) {
        try KafkaConsumer.store(offsets, handle: handle)
    }

    /// Commits every stored offset and waits for the broker.
    public func commit() throws(KafkaError) {
        try KafkaConsumer.commitBlocking(handle: handle)
    }
}

/// What one poll returned: records, and partitions that reached their end.
public struct ConsumerBatch: Sendable {
    /// Records in the order they were fetched (ordered within each partition).
    public var records: [ConsumedRecord]
    /// Partitions whose end was reached (`enable.partition.eof`), with the end offset.
    public var endOfPartition: [TopicPartitionOffset]

    /// A batch (tests build these directly).
    public init(records: [ConsumedRecord] = [], endOfPartition: [TopicPartitionOffset] = []) {
        self.records = records
        self.endOfPartition = endOfPartition
    }
}

/// A consumer, in a group (subscribe) or on explicit partitions (assign).
///
/// Offsets are stored by the caller (`enable.auto.offset.store=false`) only after a record's
/// outputs are delivered, and committed in the background (`enable.auto.commit`) and on
/// revoke and close. Polls run on a dedicated dispatch queue, never on the cooperative pool;
/// they also serve the rebalance callback, so the listener runs there too.
public final class KafkaConsumer: Sendable {
    private let client: NativeClient
    private let pollQueue: DispatchQueue
    private let closed = Atomic<Bool>(false)
    /// Whether this consumer joined a group (closing must then leave it).
    private let usesGroup: Bool

    /// Vigil's consumer defaults; `config.properties` override them.
    public static let defaults: [String: String] = [
        "enable.auto.offset.store": "false",
        "enable.auto.commit": "true",
        "auto.commit.interval.ms": "1000",
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
        // Once a partition's prefetch queue is full, librdkafka waits this long before fetching
        // it again (default 1000 ms). A stage drains a full queue in well under a second, so
        // the default stalled reading for most of every second while records were waiting.
        "fetch.queue.backoff.ms": "10",
    ]

    /// Creates a consumer. `groupID` is required for `subscribe` and commits; `partitionEOF`
    /// reports the end of each partition (replays and `--once` runs use it).
    public init(config: KafkaConfig, groupID: String?, logger: Logger,
                rebalanceListener: (any RebalanceListener)? = nil, partitionEOF: Bool = false) throws(KafkaError) {
        var defaults = KafkaConsumer.defaults
        if let groupID { defaults["group.id"] = groupID } else { defaults["group.id"] = "vigil-unassigned"; defaults["enable.auto.commit"] = "false" }
        defaults["enable.partition.eof"] = partitionEOF ? "true" : "false"
        let context = ClientContext(logger: logger, rebalanceListener: rebalanceListener)
        client = try NativeClient(type: RD_KAFKA_CONSUMER, config: config, defaults: defaults, context: context) { conf in
            rd_kafka_conf_set_rebalance_cb(conf, rebalanceCallback)
        }
        // Route every event to the consumer queue so one poll serves fetches and rebalances.
        rd_kafka_poll_set_consumer(client.handle)
        pollQueue = DispatchQueue(label: "vigil.kafka.consumer")
        usesGroup = groupID != nil
    }

    deinit {
        if !closed.load(ordering: .relaxed) {
            rd_kafka_consumer_close(client.handle)
        }
    }

    /// Joins the group and subscribes to `topics`.
    public func subscribe(_ topics: [String]) throws(KafkaError) {
        let list = PartitionList.make(topics.map { (TopicPartition(topic: $0, partition: RD_KAFKA_PARTITION_UA), nil) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let code = rd_kafka_subscribe(client.handle, list)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(code: code, reason: "subscribe to \(topics.joined(separator: ","))") }
    }

    /// Reads explicit partitions from explicit offsets, outside any group rebalancing.
    /// Offsets may be `KafkaConsumer.beginning` / `.end`.
    public func assign(_ positions: [TopicPartitionOffset]) throws(KafkaError) {
        let list = PartitionList.make(positions.map { ($0.topicPartition, $0.offset) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let code = rd_kafka_assign(client.handle, list)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(code: code, reason: "assign") }
    }

    /// The logical offset "beginning of the partition".
    public static let beginning = Int64(RD_KAFKA_OFFSET_BEGINNING)
    /// The logical offset "end of the partition".
    public static let end = Int64(RD_KAFKA_OFFSET_END)

    /// Waits up to `timeout` for records, then takes up to `maxRecords` that are ready.
    public func poll(maxRecords: Int = 1000, timeout: Duration = .milliseconds(100)) async throws(KafkaError) -> ConsumerBatch {
        guard !closed.load(ordering: .relaxed) else { throw .closed("poll") }
        let client = self.client
        let millis = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let result = await Blocking.run(on: pollQueue) { () -> Result<ConsumerBatch, KafkaError> in
            KafkaConsumer.pollBlocking(client: client, maxRecords: maxRecords, timeoutMillis: millis)
        }
        return try result.get()
    }

    private static func pollBlocking(client: NativeClient, maxRecords: Int, timeoutMillis: Int32) -> Result<ConsumerBatch, KafkaError> {
        var batch = ConsumerBatch(records: [], endOfPartition: [])
        var wait = timeoutMillis
        // The topic's name, made once per topic handle rather than once per record (a name of
        // more than 15 bytes is a heap allocation), and shared by the batch's records.
        var named: (handle: OpaquePointer, name: String)?
        while batch.records.count < maxRecords {
            guard let message = rd_kafka_consumer_poll(client.handle, wait) else { break }
            wait = 0
            defer { rd_kafka_message_destroy(message) }
            let m = message.pointee
            let topic: String
            if let handle = m.rkt {
                if let named, named.handle == handle {
                    topic = named.name
                } else {
                    topic = String(cString: rd_kafka_topic_name(handle))
                    named = (handle, topic)
                }
            } else {
                topic = ""
            }
            switch m.err {
            case RD_KAFKA_RESP_ERR_NO_ERROR:
                batch.records.append(copyRecord(message, topic: topic))
            case RD_KAFKA_RESP_ERR__PARTITION_EOF:
                batch.endOfPartition.append(TopicPartitionOffset(TopicPartition(topic: topic, partition: m.partition), offset: m.offset))
            default:
                let reason = m.payload.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: m.len), as: UTF8.self) } ?? ""
                let error = KafkaError(code: m.err, reason: "consume \(topic)[\(m.partition)]: \(reason)")
                if error.isFatal { return .failure(error) }
                client.context.logger.warning("consumer error", metadata: ["error": .string(error.description)])
                if let fatal = client.context.fatal.withLock({ $0 }) { return .failure(fatal) }
            }
        }
        if let fatal = client.context.fatal.withLock({ $0 }) { return .failure(fatal) }
        return .success(batch)
    }

    /// Copies a message out of librdkafka's buffers (it is destroyed right after).
    private static func copyRecord(_ message: UnsafeMutablePointer<rd_kafka_message_t>, topic: String) -> ConsumedRecord {
        let m = message.pointee
        let value = m.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: m.len)) } ?? []
        let key = m.key.map { Array(UnsafeRawBufferPointer(start: $0, count: m.key_len)) }
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(message, &timestampType)
        var headers: [KafkaHeader] = []
        var list: OpaquePointer?
        if rd_kafka_message_headers(message, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list {
            var index = 0
            var name: UnsafePointer<CChar>?
            var valuePointer: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(list, index, &name, &valuePointer, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                let bytes = valuePointer.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }
                headers.append(KafkaHeader(name: name.map { String(cString: $0) } ?? "", value: bytes))
                index += 1
            }
        }
        return ConsumedRecord(topic: topic, partition: m.partition, offset: m.offset, key: key, value: value,
                              headers: headers, timestamp: timestampType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp)
    }

    /// Stores offsets (the next offset to read) to be committed by the next commit.
    public func store(_ offsets: [TopicPartitionOffset]) throws(KafkaError) {
        try KafkaConsumer.store(offsets, handle: client.handle)
    }

    static func store(_ offsets: [TopicPartitionOffset], handle: OpaquePointer) throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        let list = PartitionList.make(offsets.map { ($0.topicPartition, $0.offset) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let code = rd_kafka_offsets_store(handle, list)
        // _STATE: a partition no longer assigned (revoked meanwhile); its new owner re-reads.
        if code != RD_KAFKA_RESP_ERR_NO_ERROR && code != RD_KAFKA_RESP_ERR__STATE {
            throw KafkaError(code: code, reason: "store offsets")
        }
    }

    /// Commits every stored offset and waits for the broker.
    public func commit() async throws(KafkaError) {
        let client = self.client
        let result = await Blocking.run { () -> Result<Void, KafkaError> in
            do throws(KafkaError) { try KafkaConsumer.commitBlocking(handle: client.handle); return .success(()) } catch { return .failure(error) }
        }
        try result.get()
    }

    static func commitBlocking(handle: OpaquePointer) throws(KafkaError) {
        let code = rd_kafka_commit(handle, nil, 0)
        // _NO_OFFSET: nothing new to commit.
        if code != RD_KAFKA_RESP_ERR_NO_ERROR && code != RD_KAFKA_RESP_ERR__NO_OFFSET {
            throw KafkaError(code: code, reason: "commit")
        }
    }

    /// Offsets committed for the group on `partitions` (-1001 when none).
    public func committed(_ partitions: [TopicPartition], timeout: Duration = .seconds(10)) async throws(KafkaError) -> [TopicPartition: Int64] {
        let client = self.client
        let millis = Int32(clamping: timeout.components.seconds * 1000)
        let result = await Blocking.run { () -> Result<[TopicPartition: Int64], KafkaError> in
            let list = PartitionList.make(partitions.map { ($0, nil) })
            defer { rd_kafka_topic_partition_list_destroy(list) }
            let code = rd_kafka_committed(client.handle, list, millis)
            guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { return .failure(KafkaError(code: code, reason: "committed offsets")) }
            var out: [TopicPartition: Int64] = [:]
            for (tp, offset, _) in PartitionList.read(list) { out[tp] = offset }
            return .success(out)
        }
        return try result.get()
    }

    /// Moves the fetch position of assigned partitions.
    public func seek(_ positions: [TopicPartitionOffset], timeout: Duration = .seconds(10)) async throws(KafkaError) {
        let client = self.client
        let millis = Int32(clamping: timeout.components.seconds * 1000)
        let failure = await Blocking.run(on: pollQueue) { () -> KafkaError? in
            let list = PartitionList.make(positions.map { ($0.topicPartition, $0.offset) })
            defer { rd_kafka_topic_partition_list_destroy(list) }
            if let error = rd_kafka_seek_partitions(client.handle, list, millis) {
                return KafkaError(consuming: error, context: "seek")
            }
            for (tp, _, code) in PartitionList.read(list) where code != RD_KAFKA_RESP_ERR_NO_ERROR {
                return KafkaError(code: code, reason: "seek \(tp)")
            }
            return nil
        }
        if let failure { throw failure }
    }

    /// For each partition, the earliest offset whose timestamp is at or after the given time
    /// (epoch ms); -1 when there is none. Some brokers answer less precisely (the offset of
    /// the beginning): callers still skip records older than the time they asked for.
    public func offsetsForTimes(_ times: [TopicPartition: Int64], timeout: Duration = .seconds(10)) async throws(KafkaError) -> [TopicPartition: Int64] {
        let client = self.client
        let millis = Int32(clamping: timeout.components.seconds * 1000)
        let entries = times.map { ($0.key, Optional($0.value)) }
        let result = await Blocking.run { () -> Result<[TopicPartition: Int64], KafkaError> in
            let list = PartitionList.make(entries)
            defer { rd_kafka_topic_partition_list_destroy(list) }
            let code = rd_kafka_offsets_for_times(client.handle, list, millis)
            guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { return .failure(KafkaError(code: code, reason: "offsets for times")) }
            var out: [TopicPartition: Int64] = [:]
            for (tp, offset, error) in PartitionList.read(list) {
                guard error == RD_KAFKA_RESP_ERR_NO_ERROR else { return .failure(KafkaError(code: error, reason: "offsets for times \(tp)")) }
                out[tp] = offset
            }
            return .success(out)
        }
        return try result.get()
    }

    /// Stops fetching `partitions` (they stay assigned).
    public func pause(_ partitions: [TopicPartition]) throws(KafkaError) {
        let list = PartitionList.make(partitions.map { ($0, nil) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let code = rd_kafka_pause_partitions(client.handle, list)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(code: code, reason: "pause") }
    }

    /// Resumes fetching paused `partitions`.
    public func resume(_ partitions: [TopicPartition]) throws(KafkaError) {
        let list = PartitionList.make(partitions.map { ($0, nil) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let code = rd_kafka_resume_partitions(client.handle, list)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(code: code, reason: "resume") }
    }

    /// The partitions currently assigned to this member.
    public func assignment() throws(KafkaError) -> [TopicPartition] {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        let code = rd_kafka_assignment(client.handle, &list)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(code: code, reason: "assignment") }
        defer { if let list { rd_kafka_topic_partition_list_destroy(list) } }
        return PartitionList.read(list).map(\.0).sorted()
    }

    /// Low and high watermark offsets of a partition, asked of the broker.
    public func watermarks(_ partition: TopicPartition, timeout: Duration = .seconds(10)) async throws(KafkaError) -> (low: Int64, high: Int64) {
        let client = self.client
        let millis = Int32(clamping: timeout.components.seconds * 1000)
        let result = await Blocking.run { () -> Result<(low: Int64, high: Int64), KafkaError> in
            var low: Int64 = -1
            var high: Int64 = -1
            let code = rd_kafka_query_watermark_offsets(client.handle, partition.topic, partition.partition, &low, &high, millis)
            guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { return .failure(KafkaError(code: code, reason: "watermarks \(partition)")) }
            return .success((low, high))
        }
        return try result.get()
    }

    /// The current position (next offset to fetch) of assigned partitions, from local state.
    public func positions(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        let list = PartitionList.make(partitions.map { ($0, nil) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        _ = rd_kafka_position(client.handle, list)
        var out: [TopicPartition: Int64] = [:]
        for (tp, offset, _) in PartitionList.read(list) { out[tp] = offset }
        return out
    }

    /// High watermarks librdkafka last saw in fetch responses (no broker round trip); -1 unknown.
    public func cachedHighWatermark(_ partition: TopicPartition) -> Int64 {
        var low: Int64 = -1
        var high: Int64 = -1
        _ = rd_kafka_get_watermark_offsets(client.handle, partition.topic, partition.partition, &low, &high)
        return high
    }

    /// Leaves the group: runs the revoke listener (which commits), then closes. Idempotent.
    public func close() async {
        guard !closed.exchange(true, ordering: .relaxed) else { return }
        let client = self.client
        let usesGroup = self.usesGroup
        await Blocking.run(on: pollQueue) {
            if !usesGroup { _ = rd_kafka_assign(client.handle, nil) }
            let code = rd_kafka_consumer_close(client.handle)
            if code != RD_KAFKA_RESP_ERR_NO_ERROR {
                client.context.logger.warning("consumer close", metadata: ["error": .string(String(cString: rd_kafka_err2str(code)))])
            }
        }
    }
}

/// librdkafka's rebalance callback: run the listener, then apply the change ourselves, so the
/// listener sees revoked partitions while they are still owned.
private let rebalanceCallback: @convention(c) (OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, UnsafeMutableRawPointer?) -> Void = {
    rk, error, partitions, opaque in
    guard let rk, let context = ClientContext.from(opaque) else { return }
    let list = PartitionList.read(partitions).map(\.0)
    let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
    let actions = RebalanceActions(handle: rk)
    switch error {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        context.logger.info("partitions assigned", metadata: ["partitions": .string(list.map(\.description).joined(separator: ","))])
        context.rebalanceListener?.partitionsAssigned(list, actions: actions)
        if cooperative {
            if let failure = rd_kafka_incremental_assign(rk, partitions) { logAssignFailure(context, KafkaError(consuming: failure, context: "incremental assign")) }
        } else {
            _ = rd_kafka_assign(rk, partitions)
        }
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        context.logger.info("partitions revoked", metadata: ["partitions": .string(list.map(\.description).joined(separator: ","))])
        // After a lost assignment (session timeout) commits would fail: skip the listener's commit then.
        if rd_kafka_assignment_lost(rk) == 0 {
            context.rebalanceListener?.partitionsRevoked(list, actions: actions)
        } else {
            context.logger.warning("assignment lost; offsets of revoked partitions not committed")
        }
        if cooperative {
            if let failure = rd_kafka_incremental_unassign(rk, partitions) { logAssignFailure(context, KafkaError(consuming: failure, context: "incremental unassign")) }
        } else {
            _ = rd_kafka_assign(rk, nil)
        }
    default:
        context.logger.error("rebalance error", metadata: ["code": .string(String(cString: rd_kafka_err2name(error)))])
        _ = rd_kafka_assign(rk, nil)
    }
}

private func logAssignFailure(_ context: ClientContext, _ error: KafkaError) {
    context.logger.error("rebalance apply failed", metadata: ["error": .string(error.description)])
}
