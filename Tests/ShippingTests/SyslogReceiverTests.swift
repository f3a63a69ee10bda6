import Foundation
import Kafka
import NIOCore
import NIOPosix
import Pipeline
import Shipping
import Synchronization
import Testing
import TestSupport

@Suite struct SyslogFramingTests {
    @Test func octetCountingKeepsEmbeddedNewlinesAcrossChunks() throws {
        var framer = SyslogStreamFramer(maxMessageSize: 100)
        let stream = Array("5 ab\ncd3 xyz".utf8)
        var frames: [SyslogFrame] = []
        for byte in stream { frames += try framer.feed([byte]) }
        #expect(framer.method == .octetCounting)
        #expect(frames == [SyslogFrame(bytes: Array("ab\ncd".utf8)), SyslogFrame(bytes: Array("xyz".utf8))])
    }

    @Test func lineFramingTruncatesAndResynchronizes() throws {
        var framer = SyslogStreamFramer(maxMessageSize: 4)
        let frames = try framer.feed(Array("<1>a\n\n<2>toolong\n<3>\n".utf8))
        #expect(framer.method == .nonTransparent)
        #expect(frames == [SyslogFrame(bytes: Array("<1>a".utf8)), SyslogFrame(bytes: Array("<2>t".utf8), truncated: true),
                           SyslogFrame(bytes: Array("<3>".utf8))])
        _ = try framer.feed(Array("tail".utf8))
        #expect(framer.finish().frame == SyslogFrame(bytes: Array("tail".utf8)))
    }

    @Test func octetCountingTruncatesAndSkipsTheRest() throws {
        var framer = SyslogStreamFramer(maxMessageSize: 3)
        let frames = try framer.feed(Array("6 abcdef2 gh".utf8))
        #expect(frames == [SyslogFrame(bytes: Array("abc".utf8), truncated: true), SyslogFrame(bytes: Array("gh".utf8))])
    }

    @Test func badOctetCountIsAnError() {
        var framer = SyslogStreamFramer(maxMessageSize: 10)
        let error = #expect(throws: ShippingError.self) { try framer.feed(Array("12x".utf8)) }
        #expect(error?.code == "bad_framing")
    }
}

@Suite struct SyslogReceiverTests {
    static let topics = Topics(prefix: "t.")

    /// Sends through plain sockets so the test does not share the receiver's code paths.
    func sendUDP(_ messages: [[UInt8]], port: Int) async throws {
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let target = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        for message in messages {
            try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: ByteBuffer(bytes: message)))
            // Loopback does not drop, but a burst can outrun the receive buffer on a busy box.
            try await Task.sleep(for: .milliseconds(2))
        }
        try await channel.close()
    }

    func sendTCP(_ bytes: [UInt8], port: Int) async throws {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
        try await channel.close()
    }

    func start(_ broker: EmbeddedBroker, maxMessageSize: Int = 65_536) async throws
        -> (SyslogReceiver, Task<Void, any Error>, SyslogEndpoints, MetricsRegistry) {
        let admin = try KafkaAdmin(config: TestBroker.config(broker), logger: TestBroker.logger)
        _ = try await admin.createTopics([TopicSpec(name: Self.topics.raw, partitions: 1, replicationFactor: 1)])
        let producer = try KafkaProducer(config: TestBroker.config(broker), logger: TestBroker.logger)
        var config = SyslogReceiverConfig()
        config.udpPort = 0
        config.tcpPort = 0
        config.topics = Self.topics
        config.maxMessageSize = maxMessageSize
        let metrics = MetricsRegistry()
        let receiver = try SyslogReceiver(config: config, producer: producer, metrics: metrics, logger: TestBroker.logger)
        let task = Task { try await receiver.run() }
        var endpoints: SyslogEndpoints?
        _ = await TestBroker.eventually(timeout: .seconds(60)) {
            endpoints = receiver.endpoints
            return endpoints != nil
        }
        let bound = try #require(endpoints)
        #expect(bound.udpPort != nil && bound.udpPort != 0 && bound.tcpPort != nil && bound.tcpPort != 0)
        return (receiver, task, bound, metrics)
    }

    @Test(.enabled(if: TestBroker.isAvailable))
    func udpAndBothTCPFramingsArriveByteExact() async throws {
        let broker = try await TestBroker.start()
        defer { broker.stop() }
        let (receiver, task, endpoints, metrics) = try await start(broker)

        let udp = (0..<50).map { i in
            Array("<38>Jan  5 10:00:\(String(format: "%02d", i % 60)) web1 sshd[\(1000 + i)]: Accepted publickey for deploy from 10.0.0.\(i) port 5\(i) ssh2".utf8)
        }
        var octet = (0..<20).map { i in Array("<86>1 2024-01-05T10:00:00Z web2 sshd 77 - - Failed password for root from 10.1.0.\(i)".utf8) }
        octet[7] = Array("<86>1 2024-01-05T10:00:00Z web2 app 77 - - line one\nline two".utf8)
        let lines = (0..<20).map { i in Array("<13>Jan  5 10:01:00 web3 sshd[9\(i)]: Connection closed by 10.2.0.\(i)".utf8) }

        try await sendUDP(udp, port: try #require(endpoints.udpPort))
        try await sendTCP(octet.flatMap { Array("\($0.count) ".utf8) + $0 }, port: try #require(endpoints.tcpPort))
        try await sendTCP(lines.flatMap { $0 + [0x0A] }, port: try #require(endpoints.tcpPort))

        #expect(await TestBroker.eventually(timeout: .seconds(20)) { metrics.counterTotal("vigil_syslog_produced_total") >= 90 })
        receiver.stop()
        try await task.value

        let records = try await TestBroker.readAll(broker, topic: Self.topics.raw, partitions: 1, atLeast: 90)
        #expect(records.count == 90)
        #expect(records.allSatisfy { $0.headers.text(VigilHeader.source) == "syslog" })
        #expect(records.allSatisfy { $0.key == Array("127.0.0.1".utf8) && $0.timestamp != nil })
        let sent = (udp + octet + lines).sorted { $0.lexicographicallyPrecedes($1) }
        let got = records.map(\.value).sorted { $0.lexicographicallyPrecedes($1) }
        #expect(got == sent)
        #expect(metrics.counter("vigil_syslog_received_total", labels: ["transport": "udp"]) == 50)
        #expect(metrics.counter("vigil_syslog_received_total", labels: ["transport": "tcp"]) == 40)
        #expect(metrics.counterTotal("vigil_syslog_dropped_total") == 0)
        #expect(metrics.counterTotal("vigil_syslog_truncated_total") == 0)
    }

    @Test(.enabled(if: TestBroker.isAvailable))
    func overLongMessagesAreCutAndStopFlushes() async throws {
        let broker = try await TestBroker.start()
        defer { broker.stop() }
        let (receiver, task, endpoints, metrics) = try await start(broker, maxMessageSize: 100)

        let long = Array(repeating: UInt8(ascii: "x"), count: 250)
        try await sendUDP([long], port: try #require(endpoints.udpPort))
        try await sendTCP(Array("250 ".utf8) + long + Array("2 ok".utf8), port: try #require(endpoints.tcpPort))
        #expect(await TestBroker.eventually(timeout: .seconds(10)) { metrics.counterTotal("vigil_syslog_received_total") == 3 })
        // Stop at once: what is still buffered must be produced before run() returns.
        receiver.stop()
        try await task.value
        #expect(metrics.counterTotal("vigil_syslog_produced_total") == 3)

        let records = try await TestBroker.readAll(broker, topic: Self.topics.raw, partitions: 1, atLeast: 3)
        let values = records.map(\.value).sorted { $0.lexicographicallyPrecedes($1) }
        #expect(values == [Array("ok".utf8), Array(long.prefix(100)), Array(long.prefix(100))])
        #expect(metrics.counter("vigil_syslog_truncated_total", labels: ["transport": "udp"]) == 1)
        #expect(metrics.counter("vigil_syslog_truncated_total", labels: ["transport": "tcp"]) == 1)
    }

    @Test(.enabled(if: TestBroker.isAvailable))
    func cancellationStopsTheReceiver() async throws {
        let broker = try await TestBroker.start()
        defer { broker.stop() }
        let (_, task, endpoints, metrics) = try await start(broker)
        try await sendTCP(Array("<13>bye\n".utf8), port: try #require(endpoints.tcpPort))
        #expect(await TestBroker.eventually(timeout: .seconds(10)) { metrics.counterTotal("vigil_syslog_received_total") == 1 })
        task.cancel()
        try await task.value
        #expect(metrics.counterTotal("vigil_syslog_produced_total") == 1)
    }
}
