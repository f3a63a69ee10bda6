import Foundation

/// One object of a bucket listing.
public struct S3Object: Sendable, Equatable {
    /// The object key.
    public var key: String
    /// Size in bytes.
    public var size: Int
    /// The entity tag, without the surrounding quotes.
    public var etag: String
    /// When the object was last written, when the listing said.
    public var lastModified: Date?

    /// Makes an object entry.
    public init(key: String, size: Int, etag: String, lastModified: Date? = nil) {
        self.key = key
        self.size = size
        self.etag = etag
        self.lastModified = lastModified
    }
}

/// One page of `ListObjectsV2`.
public struct S3ListPage: Sendable, Equatable {
    /// The objects on this page, in key order.
    public var objects: [S3Object]
    /// The token for the next page; `nil` on the last page.
    public var nextToken: String?

    /// Makes a page.
    public init(objects: [S3Object], nextToken: String?) {
        self.objects = objects
        self.nextToken = nextToken
    }

    /// Parses a `ListBucketResult` document; throws `invalid_response` when it is not one.
    public static func parse(_ body: [UInt8]) throws(AWSError) -> S3ListPage {
        guard let root = XMLNode.parse(body), root.name == "ListBucketResult" else {
            throw AWSError(code: "invalid_response", message: "ListObjectsV2 answer is not a ListBucketResult")
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        var objects: [S3Object] = []
        for node in root.children("Contents") {
            guard let key = node.child("Key")?.text else { continue }
            let etag = (node.child("ETag")?.text ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            let modified = node.child("LastModified").flatMap { formatter.date(from: $0.text) ?? plain.date(from: $0.text) }
            objects.append(S3Object(key: key, size: Int(node.child("Size")?.text ?? "") ?? 0, etag: etag, lastModified: modified))
        }
        let truncated = root.child("IsTruncated")?.text == "true"
        let token = root.child("NextContinuationToken")?.text
        return S3ListPage(objects: objects, nextToken: truncated ? (token?.isEmpty == false ? token : nil) : nil)
    }
}

extension AWSClient {
    /// Path and host for an S3 bucket (and key): path-style with an endpoint override,
    /// virtual-hosted otherwise.
    func s3Location(bucket: String, key: String? = nil) -> (path: String, host: String?) {
        if usesPathStyle {
            return ("/\(bucket)" + (key.map { "/\($0)" } ?? ""), nil)
        }
        return ("/" + (key ?? ""), "\(bucket).s3.\(region).amazonaws.com")
    }

    /// One page of the bucket's objects under `prefix`, after `startAfter` or continuing
    /// from `continuationToken`.
    public func listObjectsV2(bucket: String, prefix: String? = nil, startAfter: String? = nil,
                              continuationToken: String? = nil, maxKeys: Int? = nil) async throws(AWSError) -> S3ListPage {
        var query: [(name: String, value: String)] = [("list-type", "2")]
        if let prefix, !prefix.isEmpty { query.append(("prefix", prefix)) }
        if let startAfter { query.append(("start-after", startAfter)) }
        if let continuationToken { query.append(("continuation-token", continuationToken)) }
        if let maxKeys { query.append(("max-keys", String(maxKeys))) }
        let location = s3Location(bucket: bucket)
        let response = try await send(method: "GET", service: "s3", path: location.path, query: query, host: location.host)
        return try S3ListPage.parse(response.body)
    }

    /// The object's bytes.
    public func getObject(bucket: String, key: String) async throws(AWSError) -> [UInt8] {
        let location = s3Location(bucket: bucket, key: key)
        return try await send(method: "GET", service: "s3", path: location.path, host: location.host).body
    }

    /// Writes an object (tests and tools; shippers only read).
    public func putObject(bucket: String, key: String, body: [UInt8], contentType: String = "application/octet-stream") async throws(AWSError) {
        let location = s3Location(bucket: bucket, key: key)
        _ = try await send(method: "PUT", service: "s3", path: location.path, headers: ["content-type": contentType],
                           body: body, host: location.host)
    }

    /// Creates a bucket in the client's region (tests and tools).
    public func createBucket(_ bucket: String) async throws(AWSError) {
        let location = s3Location(bucket: bucket)
        var body: [UInt8] = []
        if region != "us-east-1" {
            body = Array(("<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                + "<LocationConstraint>\(region)</LocationConstraint></CreateBucketConfiguration>").utf8)
        }
        _ = try await send(method: "PUT", service: "s3", path: location.path, body: body, host: location.host)
    }
}
