import Foundation
import OCSF
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// What AWS answered: status, headers (names lowercased) and body.
public struct AWSResponse: Sendable, Equatable {
    /// The HTTP status.
    public var status: Int
    /// Response headers, names lowercased.
    public var headers: [String: String]
    /// The body bytes.
    public var body: [UInt8]

    /// Makes a response.
    public init(status: Int, headers: [String: String], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// A signed-request client for one region and one set of credentials.
///
/// With an endpoint override (`VIGIL_AWS_ENDPOINT`, or given) every service is reached at that
/// URL and S3 uses path-style addressing (`/bucket/key`), as moto and MinIO expect; without one,
/// requests go to the public `https://<service>.<region>.amazonaws.com` endpoints and S3 uses
/// virtual-hosted addressing.
public struct AWSClient: Sendable {
    /// The region requests are signed for.
    public let region: String
    /// The endpoint override, when there is one.
    public let endpoint: URL?
    /// The keys requests are signed with.
    public let credentials: AWSCredentials
    /// How long one request may take.
    public var timeout: Duration = .seconds(60)

    /// Makes a client. Throws `invalid_endpoint` for an endpoint that is not an http(s) URL.
    public init(region: String, credentials: AWSCredentials, endpoint: URL? = nil) throws(AWSError) {
        if let endpoint {
            guard let scheme = endpoint.scheme?.lowercased(), scheme == "http" || scheme == "https", endpoint.host != nil else {
                throw AWSError(code: "invalid_endpoint", message: "endpoint must be an http(s) URL with a host")
            }
        }
        self.region = region
        self.credentials = credentials
        self.endpoint = endpoint
    }

    /// A client from the environment: `AWS_REGION` / `AWS_DEFAULT_REGION` (default
    /// `us-east-1`), `VIGIL_AWS_ENDPOINT`, and the standard credential chain.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws(AWSError) -> AWSClient {
        let region = environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        var endpoint: URL?
        if let text = environment["VIGIL_AWS_ENDPOINT"], !text.isEmpty {
            guard let url = URL(string: text) else { throw AWSError(code: "invalid_endpoint", message: "VIGIL_AWS_ENDPOINT is not a URL") }
            endpoint = url
        }
        return try AWSClient(region: region, credentials: try AWSCredentials.load(environment: environment), endpoint: endpoint)
    }

    /// Whether S3 requests use path-style addressing (an endpoint override is set).
    public var usesPathStyle: Bool { endpoint != nil }

    /// Sends a signed request and returns the response; a status of 300 or more is thrown as
    /// an `AWSError` with the code and message from the error body.
    ///
    /// `path` is unencoded (`/bucket/a key.json`); `host` overrides the host of the public
    /// endpoint (S3 virtual-hosted addressing) and is ignored with an endpoint override.
    public func send(method: String, service: String, path: String, query: [(name: String, value: String)] = [],
                     headers: [String: String] = [:], body: [UInt8] = [], host: String? = nil) async throws(AWSError) -> AWSResponse {
        let base: URL
        if let endpoint {
            base = endpoint
        } else {
            let name = host ?? Self.defaultHost(service: service, region: region)
            guard let url = URL(string: "https://\(name)") else { throw AWSError(code: "invalid_endpoint", message: "bad host") }
            base = url
        }
        var hostHeader = base.host ?? ""
        if let port = base.port { hostHeader += ":\(port)" }
        let basePath = base.path.hasSuffix("/") ? String(base.path.dropLast()) : base.path
        let fullPath = basePath + (path.hasPrefix("/") ? path : "/" + path)
        let queryString = SigV4Signer.canonicalQuery(query)
        var urlText = "\(base.scheme ?? "https")://\(hostHeader)\(SigV4Signer.encodePath(fullPath))"
        if !queryString.isEmpty { urlText += "?" + queryString }
        guard let url = URL(string: urlText) else { throw AWSError(code: "invalid_endpoint", message: "cannot form the request URL") }

        var signedHeaders = headers
        signedHeaders["host"] = hostHeader
        let payloadHash = hexString(SHA256.hash(data: body))
        let signer = SigV4Signer(credentials: credentials, region: Self.signingRegion(service: service, region: region), service: service)
        let added = signer.sign(method: method, path: fullPath, query: query, headers: signedHeaders,
                                payloadHash: payloadHash, date: Date())

        var request = URLRequest(url: url)
        request.httpMethod = method
        request.timeoutInterval = Double(timeout.components.seconds)
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        for (name, value) in added { request.setValue(value, forHTTPHeaderField: name) }
        if !body.isEmpty || method == "PUT" || method == "POST" { request.httpBody = Data(body) }

        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            // URLError descriptions name the URL and the failure, never headers or bodies.
            throw AWSError(code: "transport_failed", message: "\(method) to \(service) failed: \((error as NSError).localizedDescription)")
        }
        guard let http = response as? HTTPURLResponse else {
            throw AWSError(code: "invalid_response", message: "not an HTTP response")
        }
        var responseHeaders: [String: String] = [:]
        for (name, value) in http.allHeaderFields {
            if let name = name as? String, let value = value as? String { responseHeaders[name.lowercased()] = value }
        }
        let result = AWSResponse(status: http.statusCode, headers: responseHeaders, body: [UInt8](data))
        if result.status >= 300 {
            throw Self.error(status: result.status, headers: responseHeaders, body: result.body)
        }
        return result
    }

    /// The public endpoint host for a service in a region; IAM is global.
    static func defaultHost(service: String, region: String) -> String {
        switch service {
        case "iam": "iam.amazonaws.com"
        default: "\(service).\(region).amazonaws.com"
        }
    }

    /// IAM signs for us-east-1 whatever the client's region.
    static func signingRegion(service: String, region: String) -> String {
        service == "iam" ? "us-east-1" : region
    }

    /// The error an unsuccessful response stands for: code and message from an XML
    /// (`<Error><Code>`, `<ErrorResponse><Error><Code>`) or JSON (`__type`, `code`, `message`)
    /// body, else `http_error`. Echoed request details (`StringToSign`, `CanonicalRequest`,
    /// `AWSAccessKeyId`) are never copied.
    public static func error(status: Int, headers: [String: String] = [:], body: [UInt8]) -> AWSError {
        let requestIDHeader = headers["x-amz-request-id"] ?? headers["x-amzn-requestid"]
        if let root = XMLNode.parse(body) {
            let errorNode = root.find("Error") ?? root
            if let code = errorNode.child("Code")?.text ?? root.find("Code")?.text, !code.isEmpty {
                let message = errorNode.child("Message")?.text ?? root.find("Message")?.text
                let requestID = root.find("RequestId")?.text ?? root.find("RequestID")?.text ?? requestIDHeader
                return AWSError(code: code, status: status, message: message, requestID: requestID)
            }
        }
        if let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] {
            var code = (object["__type"] as? String) ?? (object["code"] as? String) ?? (object["Code"] as? String)
                ?? headers["x-amzn-errortype"]
            // `com.amazon.coral.service#ThrottlingException` and `Code:http://...` both occur.
            if let raw = code {
                code = String(raw.split(separator: "#").last ?? Substring(raw)).split(separator: ":").first.map(String.init)
            }
            let message = (object["message"] as? String) ?? (object["Message"] as? String)
            if let code, !code.isEmpty {
                return AWSError(code: code, status: status, message: message, requestID: requestIDHeader)
            }
        }
        if let type = headers["x-amzn-errortype"], let code = type.split(separator: ":").first {
            return AWSError(code: String(code), status: status, requestID: requestIDHeader)
        }
        return AWSError(code: "http_error", status: status, requestID: requestIDHeader)
    }
}
