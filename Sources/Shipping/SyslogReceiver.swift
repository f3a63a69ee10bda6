import Foundation
import Kafka
import Logging
import NIOCore
import NIOPosix
import Pipeline
import Synchronization

/// Settings of the syslog receiver, with documented defaults.
public struct SyslogReceiverConfig: Sendable, Equatable {
    /// Address to bind; loopback by default, `0.0.0.0` to accept from the network.
    public var host: String = "127.0.0.1"
    /// UDP port (RFC 5426); 0 picks a free one, `nil` disables UDP. Default 5514 (514 needs root).
    public var udpPort: Int? = 5514
    /// TCP port (RFC 6587 framing); 0 picks a free one, `nil` disables TCP. Default 5514.
    public var tcpPort: Int? = 5514
    /// Longest message kept, in bytes (default 64 KiB). Longer messages are cut here, not
    /// dropped, and counted in `vigil_syslog_truncated_total`.
    public var maxMessageSize: Int = 65_536
    /// Most messages per produce call (default 1000).
    public var batchSize: Int = 1000
    /// How long a partial batch may wait before it is produced (default 100 ms).
    public var flushInterval: Duration = .milliseconds(100)
    /// Messages buffered ahead of the producer (default 100 000). UDP datagrams beyond it are
    /// dropped and counted; TCP connections pause reading instead.
    public var queueCapacity: Int = 100_000
    /// Topic names; records go to `topics.raw`.
    public var topics = Topics()

    /// Settings with the defaults above.
    public init() {}

    /// Throws when a setting cannot work.
    public func validate() throws(ConfigError) {
        if udpPort == nil && tcpPort == nil { throw ConfigError("syslog: enable at least one of UDP and TCP") }
        for port in [udpPort, tcpPort].compactMap({ $0 }) where !(0...65_535).contains(port) {
            throw ConfigError("syslog: port \(port) is out of range")
        }
        if maxMessageSize < 1 { throw ConfigError("syslog: max message size must be positive") }
        if batchSize < 1 { throw ConfigError("syslog: batch size must be positive") }
        if queueCapacity < 1 { throw ConfigError("syslog: queue capacity must be positive") }
        if flushInterval <= .zero { throw ConfigError("syslog: flush interval must be positive") }
    }
}

/// The ports a running receiver listens on.
public struct SyslogEndpoints: Sendable, Equatable {
    /// Bound UDP port, `nil` when UDP is off.
    public var udpPort: Int?
    /// Bound TCP port, `nil` when TCP is off.
    public var tcpPort: Int?
}

/// Receives syslog over UDP and TCP and produces each message, byte-exact, as one record to
/// `<prefix>raw` with header `vigil-source: syslog`, key = sender IP address (one host's
/// messages stay ordered in one partition), timestamp = receive time.
///
/// Messages are produced in batches (`batchSize` or every `flushInterval`) and the next batch
/// waits for the previous one's delivery reports. `run()` returns after `stop()` or task
/// cancellation, once it has stopped listening and produced everything it buffered.
///
/// Metrics: `vigil_syslog_received_total{transport}`, `vigil_syslog_produced_total`,
/// `vigil_syslog_dropped_total{reason}` (`queue_full`, `produce_failed`, `incomplete_frame`),
/// `vigil_syslog_truncated_total{transport}`, `vigil_syslog_framing_errors_total`,
/// gauge `vigil_syslog_queue_depth`.
public final class SyslogReceiver: Sendable {
    private struct State {
        var stopping = false
        var endpoints: SyslogEndpoints?
        var listeners: [any Channel] = []
        var connections: [ObjectIdentifier: any Channel] = [:]
    }

    /// The configuration.
    public let config: SyslogReceiverConfig
    let producer: KafkaProducer
    let metrics: MetricsRegistry
    let logger: Logger
    let queue: SyslogQueue
    private let state = Mutex(State())
    private let onBound: @Sendable (SyslogEndpoints) -> Void

    /// A receiver producing through `producer`; `onBound` learns the ports once listening.
    public init(config: SyslogReceiverConfig, producer: KafkaProducer, metrics: MetricsRegistry, logger: Logger,
                onBound: @escaping @Sendable (SyslogEndpoints) -> Void = { _ in }) throws(ConfigError) {
        try config.validate()
        self.config = config
        self.producer = producer
        self.metrics = metrics
        self.logger = logger
        self.queue = SyslogQueue(capacity: config.queueCapacity)
        self.onBound = onBound
    }

    /// The bound ports, `nil` until listening.
    public var endpoints: SyslogEndpoints? { state.withLock { $0.endpoints } }

    /// Stops listening; `run()` then produces what is buffered and returns.
    public func stop() {
        let channels = state.withLock { state -> [any Channel] in
            state.stopping = true
            return state.listeners + Array(state.connections.values)
        }
        for channel in channels { channel.close(promise: nil) }
    }

    private var isStopping: Bool { state.withLock { $0.stopping } }

    /// Listens and produces until `stop()` or cancellation, then flushes and returns.
    public func run() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        var listeners: [any Channel] = []
        do {
            if let port = config.udpPort { listeners.append(try await bindUDP(group: group, port: port)) }
            if let port = config.tcpPort { listeners.append(try await bindTCP(group: group, port: port)) }
        } catch {
            for channel in listeners { try? await channel.close() }
            throw error
        }
        var endpoints = SyslogEndpoints()
        if config.udpPort != nil { endpoints.udpPort = listeners.first?.localAddress?.port }
        if config.tcpPort != nil { endpoints.tcpPort = listeners.last?.localAddress?.port }
        let stoppedEarly = state.withLock { state -> Bool in
            state.listeners = listeners
            state.endpoints = endpoints
            return state.stopping
        }
        if stoppedEarly { stop() }
        logger.info("syslog receiver listening", metadata: [
            "host": "\(config.host)", "udp": "\(endpoints.udpPort.map(String.init) ?? "off")",
            "tcp": "\(endpoints.tcpPort.map(String.init) ?? "off")",
        ])
        onBound(endpoints)

        await withTaskCancellationHandler {
            await produceLoop()
        } onCancel: {
            self.stop()
        }
        // Wait until nothing can append any more, then produce the rest.
        for channel in listeners { try? await channel.closeFuture.get() }
        let connections = state.withLock { Array($0.connections.values) }
        for channel in connections { try? await channel.closeFuture.get() }
        while true {
            let batch = queue.take(upTo: config.batchSize)
            if batch.isEmpty { break }
            await produce(batch)
        }
        metrics.set("vigil_syslog_queue_depth", 0, help: "Syslog messages waiting to be produced.")
        logger.info("syslog receiver stopped")
    }

    private func produceLoop() async {
        while !isStopping {
            let batch = queue.take(upTo: config.batchSize)
            metrics.set("vigil_syslog_queue_depth", Double(queue.count), help: "Syslog messages waiting to be produced.")
            if !batch.isEmpty { await produce(batch) }
            // A full batch means more is waiting: go on at once; otherwise let a batch gather.
            if batch.count < config.batchSize && !isStopping {
                try? await Task.sleep(for: config.flushInterval)
            }
        }
    }

    private func produce(_ batch: [SyslogPending]) async {
        let topic = config.topics.raw
        let header = KafkaHeader(VigilHeader.source, "syslog")
        let records = batch.map { item in
            OutgoingRecord(topic: topic, key: Array(item.sender.utf8), value: item.bytes, headers: [header],
                           timestamp: item.receivedAt)
        }
        let outcomes: [Result<DeliveryReport, KafkaError>]
        do {
            outcomes = try await producer.sendEach(records)
        } catch {
            outcomes = Array(repeating: .failure(error), count: records.count)
        }
        var failed = 0
        var firstError: KafkaError?
        for outcome in outcomes {
            if case .failure(let error) = outcome {
                failed += 1
                if firstError == nil { firstError = error }
            }
        }
        // librdkafka has already retried for message.timeout.ms; a failure here is final.
        if failed > 0 {
            metrics.increment("vigil_syslog_dropped_total", by: Double(failed), labels: ["reason": "produce_failed"],
                              help: "Syslog messages lost (queue full, produce failed, incomplete frame).")
            logger.error("syslog records not delivered", metadata: [
                "count": "\(failed)", "error": "\(firstError.map { "\($0)" } ?? "")",
            ])
        }
        let produced = records.count - failed
        if produced > 0 {
            metrics.increment("vigil_syslog_produced_total", by: Double(produced), help: "Syslog messages produced.")
        }
    }

    // MARK: Listeners

    private func bindUDP(group: MultiThreadedEventLoopGroup, port: Int) async throws -> any Channel {
        // One byte more than the limit, so an over-long datagram shows up as longer than it.
        let capacity = min(config.maxMessageSize + 1, 65_536)
        let handler = SyslogDatagramHandler(receiver: self)
        return try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: capacity))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
            }
            .bind(host: config.host, port: port).get()
    }

    private func bindTCP(group: MultiThreadedEventLoopGroup, port: Int) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    guard self.register(connection: channel) else { throw ChannelError.ioOnClosedChannel }
                    try channel.pipeline.syncOperations.addHandler(SyslogStreamHandler(receiver: self))
                }
            }
            .bind(host: config.host, port: port).get()
    }

    /// Tracks a connection so `stop()` can close it; refuses it once stopping.
    private func register(connection channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let accepted = state.withLock { state -> Bool in
            guard !state.stopping else { return false }
            state.connections[id] = channel
            return true
        }
        if accepted {
            channel.closeFuture.whenComplete { [self] _ in
                // Kept while stopping so `run()` can wait for it to close.
                state.withLock { state in if !state.stopping { state.connections[id] = nil } }
            }
        }
        return accepted
    }

    // MARK: Called by the handlers on their event loops

    func accept(datagram frame: SyslogFrame, from sender: String) {
        count(frame, transport: "udp")
        let item = SyslogPending(bytes: frame.bytes, sender: sender, receivedAt: Self.now())
        if !queue.offer(item) {
            metrics.increment("vigil_syslog_dropped_total", labels: ["reason": "queue_full"],
                              help: "Syslog messages lost (queue full, produce failed, incomplete frame).")
        }
    }

    /// Returns whether the connection should pause reading.
    func accept(stream frames: [SyslogFrame], from sender: String) -> Bool {
        let receivedAt = Self.now()
        for frame in frames { count(frame, transport: "tcp") }
        return queue.append(frames.map { SyslogPending(bytes: $0.bytes, sender: sender, receivedAt: receivedAt) })
    }

    func countIncompleteFrame(from sender: String) {
        metrics.increment("vigil_syslog_dropped_total", labels: ["reason": "incomplete_frame"],
                          help: "Syslog messages lost (queue full, produce failed, incomplete frame).")
        logger.warning("syslog connection closed inside an octet-counted message", metadata: ["sender": "\(sender)"])
    }

    func countFramingError(_ error: ShippingError, from sender: String) {
        metrics.increment("vigil_syslog_framing_errors_total", help: "TCP connections closed for bad framing.")
        logger.warning("closing syslog connection", metadata: ["sender": "\(sender)", "error": "\(error)"])
    }

    private func count(_ frame: SyslogFrame, transport: String) {
        metrics.increment("vigil_syslog_received_total", labels: ["transport": transport], help: "Syslog messages received.")
        if frame.truncated {
            metrics.increment("vigil_syslog_truncated_total", labels: ["transport": transport],
                              help: "Syslog messages cut at the maximum message size.")
            logger.warning("syslog message truncated", metadata: [
                "transport": "\(transport)", "limit": "\(config.maxMessageSize)",
            ])
        }
    }

    static func now() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
}

/// One datagram, one message (RFC 5426).
final class SyslogDatagramHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    let receiver: SyslogReceiver

    init(receiver: SyslogReceiver) { self.receiver = receiver }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        var buffer = envelope.data
        let limit = receiver.config.maxMessageSize
        let truncated = buffer.readableBytes > limit
        let bytes = buffer.readBytes(length: min(buffer.readableBytes, limit)) ?? []
        guard !bytes.isEmpty else { return }
        receiver.accept(datagram: SyslogFrame(bytes: bytes, truncated: truncated),
                        from: envelope.remoteAddress.ipAddress ?? "unknown")
    }
}

/// Frames one TCP connection (RFC 6587) and pauses reading while the queue is full.
/// Not Sendable: it lives on its channel's event loop only.
final class SyslogStreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let receiver: SyslogReceiver
    private var framer: SyslogStreamFramer
    private var sender = "unknown"

    init(receiver: SyslogReceiver) {
        self.receiver = receiver
        self.framer = SyslogStreamFramer(maxMessageSize: receiver.config.maxMessageSize)
    }

    func channelActive(context: ChannelHandlerContext) {
        sender = context.channel.remoteAddress?.ipAddress ?? "unknown"
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let frames: [SyslogFrame]
        do {
            frames = try framer.feed(buffer.readableBytesView)
        } catch {
            receiver.countFramingError(error, from: sender)
            context.close(promise: nil)
            return
        }
        guard !frames.isEmpty else { return }
        if receiver.accept(stream: frames, from: sender) {
            let channel = context.channel
            try? channel.syncOptions?.setOption(.autoRead, value: false)
            receiver.queue.whenDrained { channel.setOption(.autoRead, value: true).whenFailure { _ in } }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let (frame, incomplete) = framer.finish()
        if let frame { _ = receiver.accept(stream: [frame], from: sender) }
        if incomplete { receiver.countIncompleteFrame(from: sender) }
        context.fireChannelInactive()
    }
}
