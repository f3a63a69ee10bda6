import Foundation
import OCSF

/// AWS Signature Version 4 (the `AWS4-HMAC-SHA256` header form).
///
/// Pure value code: give it the request's parts and a time, get the headers to add. The path
/// is given unencoded (`/bucket/my key.json`); the signer encodes each segment once (RFC 3986),
/// and once more for services other than S3, as the SigV4 rules require.
public struct SigV4Signer: Sendable {
    /// The keys to sign with.
    public var credentials: AWSCredentials
    /// The region (`us-east-1`).
    public var region: String
    /// The signing name of the service (`s3`, `iam`, `ec2`).
    public var service: String

    /// Makes a signer.
    public init(credentials: AWSCredentials, region: String, service: String) {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// The hex SHA-256 of the empty payload.
    public static let emptyPayloadHash = hexString(SHA256.hash(data: [UInt8]()))

    /// The headers a signed request adds: `x-amz-date`, `Authorization`, the session token
    /// header when the credentials have one, and `x-amz-content-sha256` when
    /// `includeContentHash` (S3 requires it; the default is true for `s3` only).
    ///
    /// `headers` must already hold `host`; every given header is signed.
    public func sign(method: String, path: String, query: [(name: String, value: String)], headers: [String: String],
                     payloadHash: String, date: Date, includeContentHash: Bool? = nil) -> [String: String] {
        let amzDate = Self.amzDate(date)
        var added: [String: String] = ["x-amz-date": amzDate]
        if includeContentHash ?? (service == "s3") { added["x-amz-content-sha256"] = payloadHash }
        if let token = credentials.sessionToken { added["x-amz-security-token"] = token }
        var all = headers
        for (name, value) in added { all[name] = value }
        let (canonical, signedHeaders) = canonicalRequest(method: method, path: path, query: query,
                                                          headers: all, payloadHash: payloadHash)
        let toSign = stringToSign(canonicalRequest: canonical, amzDate: amzDate)
        let key = Self.signingKey(secret: credentials.secretAccessKey, date: String(amzDate.prefix(8)),
                                  region: region, service: service)
        let signature = hexString(HMACSHA256.authenticate(toSign, key: key))
        added["Authorization"] = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope(amzDate: amzDate)), "
            + "SignedHeaders=\(signedHeaders), Signature=\(signature)"
        return added
    }

    /// The canonical request and the `SignedHeaders` list (lowercase names joined by `;`).
    public func canonicalRequest(method: String, path: String, query: [(name: String, value: String)],
                                 headers: [String: String], payloadHash: String) -> (request: String, signedHeaders: String) {
        var uri = Self.encodePath(path.isEmpty ? "/" : path)
        if service != "s3" { uri = Self.encodePath(uri) }
        var canonicalHeaders: [String: String] = [:]
        for (name, value) in headers {
            let key = name.lowercased()
            let folded = Self.foldSpaces(value)
            canonicalHeaders[key] = canonicalHeaders[key].map { $0 + "," + folded } ?? folded
        }
        let names = canonicalHeaders.keys.sorted()
        let signedHeaders = names.joined(separator: ";")
        let headerBlock = names.map { "\($0):\(canonicalHeaders[$0]!)\n" }.joined()
        let request = [method.uppercased(), uri, Self.canonicalQuery(query), headerBlock, signedHeaders, payloadHash]
            .joined(separator: "\n")
        return (request, signedHeaders)
    }

    /// `AWS4-HMAC-SHA256`, the time, the scope and the canonical request's hash, one per line.
    public func stringToSign(canonicalRequest: String, amzDate: String) -> String {
        ["AWS4-HMAC-SHA256", amzDate, scope(amzDate: amzDate), hexString(SHA256.hash(data: Array(canonicalRequest.utf8)))]
            .joined(separator: "\n")
    }

    /// `20150830/us-east-1/iam/aws4_request`.
    public func scope(amzDate: String) -> String {
        "\(amzDate.prefix(8))/\(region)/\(service)/aws4_request"
    }

    /// The signing key: HMAC chain over date (`YYYYMMDD`), region, service and `aws4_request`.
    public static func signingKey(secret: String, date: String, region: String, service: String) -> [UInt8] {
        let dateKey = HMACSHA256.authenticate(date, key: Array("AWS4\(secret)".utf8))
        let regionKey = HMACSHA256.authenticate(region, key: dateKey)
        let serviceKey = HMACSHA256.authenticate(service, key: regionKey)
        return HMACSHA256.authenticate("aws4_request", key: serviceKey)
    }

    /// The query string in canonical form: each name and value RFC 3986-encoded, sorted by
    /// name then value, joined by `&`. Also the form to send, so the two never differ.
    public static func canonicalQuery(_ query: [(name: String, value: String)]) -> String {
        var pairs: [(name: String, value: String)] = []
        for parameter in query { pairs.append((encode(parameter.name), encode(parameter.value))) }
        pairs.sort { (lhs: (name: String, value: String), rhs: (name: String, value: String)) -> Bool in
            lhs.name == rhs.name ? lhs.value < rhs.value : lhs.name < rhs.name
        }
        var parts: [String] = []
        for pair in pairs { parts.append(pair.name + "=" + pair.value) }
        return parts.joined(separator: "&")
    }

    /// RFC 3986 percent-encoding: everything but `A-Z a-z 0-9 - _ . ~` (and `/` when
    /// `keepSlash`), uppercase hex.
    public static func encode(_ text: String, keepSlash: Bool = false) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for byte in text.utf8 {
            if unreserved[Int(byte)] || (keepSlash && byte == 0x2f) {
                out.append(byte)
            } else {
                out.append(0x25)  // %
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0f)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// RFC 3986 unreserved bytes: `A-Z a-z 0-9 - _ . ~`.
    private static let unreserved: [Bool] = {
        var table = [Bool](repeating: false, count: 256)
        for byte in Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~".utf8) { table[Int(byte)] = true }
        return table
    }()

    /// Encodes each `/`-separated segment of a path.
    public static func encodePath(_ path: String) -> String {
        encode(path, keepSlash: true)
    }

    /// `YYYYMMDD'T'HHMMSS'Z'` in UTC.
    public static func amzDate(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z"
    }

    /// Trims a header value and folds runs of spaces to one, as the canonical form requires.
    static func foldSpaces(_ value: String) -> String {
        var out = ""
        var lastWasSpace = false
        for character in value.trimmingCharacters(in: .whitespaces) {
            if character == " " {
                if !lastWasSpace { out.append(character) }
                lastWasSpace = true
            } else {
                out.append(character)
                lastWasSpace = false
            }
        }
        return out
    }
}
