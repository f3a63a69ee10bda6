import Foundation

// The AWS Query protocol (EC2, IAM, STS, ...): a form-encoded POST of `Action`, `Version` and
// flattened parameters (`Filter.1.Value.2`), answered by an XML document named
// `<Action>Response`. The typed EC2 and IAM calls are thin wrappers over `query`.

/// One page of a paginated listing (`DescribeInstances`, `ListAccessKeys`, ...).
public struct AWSPage<Item: Sendable & Equatable>: Sendable, Equatable {
    /// The items on this page, in the order AWS returned them.
    public var items: [Item]
    /// The token (EC2 `nextToken`, IAM `Marker`) for the next page; `nil` on the last page.
    public var nextToken: String?

    /// Makes a page.
    public init(items: [Item], nextToken: String?) {
        self.items = items
        self.nextToken = nextToken
    }
}

extension AWSClient {
    /// The form body of a Query-protocol call: `Action`, `Version`, then `parameters` in the
    /// order given, each name and value percent-encoded with the RFC 3986 unreserved set (the
    /// same encoding SigV4 uses, so `+`, `/` and `:` in values survive as AWS expects).
    public static func queryBody(action: String, version: String, parameters: [(name: String, value: String)]) -> String {
        var parts = ["Action=" + SigV4Signer.encode(action), "Version=" + SigV4Signer.encode(version)]
        for parameter in parameters {
            parts.append(SigV4Signer.encode(parameter.name) + "=" + SigV4Signer.encode(parameter.value))
        }
        return parts.joined(separator: "&")
    }

    /// Calls one action of a Query-protocol service and returns the parsed answer, whose root
    /// is checked to be `<Action>Response` so that a proxy's or a wrong endpoint's XML is not
    /// mistaken for an (empty) result.
    ///
    /// Error bodies (EC2's `<Response><Errors><Error>`, IAM's `<ErrorResponse><Error>`) come
    /// out of `send` as `AWSError` with AWS's code.
    func query(service: String, action: String, version: String,
               parameters: [(name: String, value: String)] = []) async throws(AWSError) -> XMLNode {
        let body = Self.queryBody(action: action, version: version, parameters: parameters)
        let response = try await send(method: "POST", service: service, path: "/",
                                      headers: ["content-type": "application/x-www-form-urlencoded; charset=utf-8"],
                                      body: Array(body.utf8))
        return try Self.queryResult(response.body, action: action)
    }

    /// Parses a Query-protocol answer and checks its root element is `<Action>Response`.
    static func queryResult(_ body: [UInt8], action: String) throws(AWSError) -> XMLNode {
        guard let root = XMLNode.parse(body) else {
            throw AWSError(code: "invalid_response", message: "\(action) answer is not XML")
        }
        guard root.name == action + "Response" else {
            throw AWSError(code: "invalid_response", message: "\(action) answer is a \(root.name), not a \(action)Response")
        }
        return root
    }

    /// Follows `nextToken`s until the last page. A token seen twice is an `invalid_response`
    /// rather than an endless loop against a misbehaving endpoint.
    func allPages<Item: Sendable & Equatable>(_ fetch: (String?) async throws(AWSError) -> AWSPage<Item>) async throws(AWSError) -> [Item] {
        var items: [Item] = []
        var token: String?
        var seen: Set<String> = []
        repeat {
            let page = try await fetch(token)
            items += page.items
            token = page.nextToken
            if let token, !seen.insert(token).inserted {
                throw AWSError(code: "invalid_response", message: "the same page token came back twice")
            }
        } while token != nil
        return items
    }
}

/// Builders for the flattened parameter names of the Query protocol.
enum QueryParameters {
    /// `prefix.1=a&prefix.2=b`: a list member, 1-based.
    static func list(_ prefix: String, _ values: [String]) -> [(name: String, value: String)] {
        values.enumerated().map { ("\(prefix).\($0.offset + 1)", $0.element) }
    }

    /// `Filter.N.Name` / `Filter.N.Value.M`, filters in name order so the request is the same
    /// for the same dictionary on every run.
    static func filters(_ filters: [String: [String]]) -> [(name: String, value: String)] {
        var out: [(name: String, value: String)] = []
        for (index, name) in filters.keys.sorted().enumerated() {
            out.append(("Filter.\(index + 1).Name", name))
            out += list("Filter.\(index + 1).Value", filters[name] ?? [])
        }
        return out
    }

    /// `prefix.N.Key` / `prefix.N.Value`, in key order.
    static func tags(_ prefix: String, _ tags: [String: String]) -> [(name: String, value: String)] {
        var out: [(name: String, value: String)] = []
        for (index, key) in tags.keys.sorted().enumerated() {
            out.append(("\(prefix).\(index + 1).Key", key))
            out.append(("\(prefix).\(index + 1).Value", tags[key] ?? ""))
        }
        return out
    }

    /// `TagSpecification.1` for a resource being created, so it is born tagged (no window in
    /// which an untagged resource exists); nothing when there are no tags, which EC2 rejects.
    static func tagSpecification(resourceType: String, _ tags: [String: String]) -> [(name: String, value: String)] {
        guard !tags.isEmpty else { return [] }
        return [("TagSpecification.1.ResourceType", resourceType)] + Self.tags("TagSpecification.1.Tag", tags)
    }
}

extension XMLNode {
    /// The text of the direct child `name`, `nil` when absent or empty (AWS writes `<vpcId/>`
    /// for "none").
    func text(_ name: String) -> String? {
        guard let value = child(name)?.text, !value.isEmpty else { return nil }
        return value
    }

    /// The `item` (EC2) or `member` (IAM) elements of the list child `name`.
    func items(_ name: String) -> [XMLNode] {
        guard let list = child(name) else { return [] }
        return list.children.filter { $0.name == "item" || $0.name == "member" }
    }

    /// An EC2 `tagSet` as a dictionary (a tag without a value maps to "").
    var tagSet: [String: String] {
        var tags: [String: String] = [:]
        for item in items("tagSet") {
            if let key = item.text("key") { tags[key] = item.child("value")?.text ?? "" }
        }
        return tags
    }
}

/// AWS timestamps: ISO 8601 with or without fractional seconds (EC2 `2016-11-15T10:00:00.000Z`,
/// IAM `2015-03-09T18:39:23Z`, moto with microseconds).
enum AWSTimestamp {
    static func parse(_ text: String) -> Date? {
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = fractional.date(from: text) { return date }
        return ISO8601DateFormatter().date(from: text)
    }
}
