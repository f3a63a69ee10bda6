import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// Serves `/metrics` (Prometheus text), `/healthz` and `/readyz` for one stage process.
public struct MetricsServer: Service {
    /// Port to listen on; 0 asks the system for a free one (see `onBound`).
    public let port: Int
    /// Address to bind; loopback by default, `0.0.0.0` in containers.
    public let host: String
    let metrics: MetricsRegistry
    let health: HealthState
    let logger: Logger
    let onBound: @Sendable (Int) -> Void

    /// A server for `metrics` and `health`.
    public init(host: String = "127.0.0.1", port: Int, metrics: MetricsRegistry, health: HealthState, logger: Logger,
                onBound: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.host = host
        self.port = port
        self.metrics = metrics
        self.health = health
        self.logger = logger
        self.onBound = onBound
    }

    public func run() async throws {
        let metrics = self.metrics
        let health = self.health
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(MetricsHTTPHandler(metrics: metrics, health: health))
                }
            }
            .bind(host: host, port: port).get()
        let boundPort = channel.localAddress?.port ?? port
        logger.info("metrics endpoint listening", metadata: ["address": "\(host):\(boundPort)"])
        onBound(boundPort)
        try await withGracefulShutdownHandler {
            try await channel.closeFuture.get()
        } onGracefulShutdown: {
            channel.close(promise: nil)
        }
    }
}

/// One request, one response: small, allocation-light, no routing framework needed.
final class MetricsHTTPHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let metrics: MetricsRegistry
    let health: HealthState

    init(metrics: MetricsRegistry, health: HealthState) {
        self.metrics = metrics
        self.health = health
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let request) = unwrapInboundIn(data) else { return }
        let path = request.uri.split(separator: "?").first.map(String.init) ?? request.uri
        let (status, contentType, body): (HTTPResponseStatus, String, String)
        let snapshot = health.snapshot
        switch path {
        case "/metrics":
            (status, contentType, body) = (.ok, "text/plain; version=0.0.4", metrics.render())
        case "/healthz":
            (status, contentType, body) = snapshot.alive ? (.ok, "text/plain", "ok\n") : (.serviceUnavailable, "text/plain", snapshot.reason + "\n")
        case "/readyz":
            (status, contentType, body) = snapshot.ready ? (.ok, "text/plain", "ready\n") : (.serviceUnavailable, "text/plain", snapshot.reason + "\n")
        default:
            (status, contentType, body) = (.notFound, "text/plain", "not found; try /metrics, /healthz, /readyz\n")
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
        buffer.writeString(body)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
    }
}
