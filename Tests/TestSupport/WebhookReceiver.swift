import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A real HTTP server on 127.0.0.1 that records every request and answers with scripted
/// statuses (then 200): the other end of a notify action in tests.
public final class WebhookReceiver: Sendable {
    /// One request as received.
    public struct Request: Sendable {
        /// Method, path and headers (names lowercased).
        public var method: String
        public var path: String
        public var headers: [String: String]
        /// The body bytes.
        public var body: [UInt8]
    }

    /// Shared by the receiver and its connection handlers.
    private final class Recorder: Sendable {
        let state: Mutex<(requests: [Request], script: [Int])>
        init(_ statuses: [Int]) { state = Mutex(([], statuses)) }
    }

    private let recorder: Recorder
    private let channel: any Channel
    private let group: MultiThreadedEventLoopGroup
    /// The port it listens on.
    public let port: Int

    /// The URL to post to (`/hook`).
    public var url: String { "http://127.0.0.1:\(port)/hook" }

    /// Requests received so far.
    public var requests: [Request] { recorder.state.withLock { $0.requests } }

    /// Starts a receiver whose first answers are `statuses` (for example `[500, 500]`), 200 after.
    public init(statuses: [Int] = []) async throws {
        let recorder = Recorder(statuses)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(recorder: recorder))
                }
            }
        channel = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress?.port ?? 0
        self.recorder = recorder
        self.group = group
    }

    /// Stops the server.
    public func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }

    // One handler per connection; the event loop calls it serially.
    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let recorder: Recorder
        var head: HTTPRequestHead?
        var body: [UInt8] = []

        init(recorder: Recorder) { self.recorder = recorder }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let requestHead):
                head = requestHead
                body = []
            case .body(var buffer):
                body += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end:
                guard let head else { return }
                var headers: [String: String] = [:]
                for (name, value) in head.headers { headers[name.lowercased()] = value }
                let request = Request(method: "\(head.method)", path: head.uri, headers: headers, body: body)
                let status = recorder.state.withLock { state -> Int in
                    state.requests.append(request)
                    return state.script.isEmpty ? 200 : state.script.removeFirst()
                }
                var responseHeaders = HTTPHeaders()
                responseHeaders.add(name: "content-length", value: "0")
                let response = HTTPResponseHead(version: head.version, status: HTTPResponseStatus(statusCode: status), headers: responseHeaders)
                context.write(wrapOutboundOut(.head(response)), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                self.head = nil
            }
        }
    }
}
