import OCSF

/// One thing in the cloud estate that events can be about: an instance, a bucket, an IAM user,
/// an access key, ...
///
/// The stored, imported and published form uses snake_case keys that match the CSV columns
/// (`internet_exposed`, `private_ips`, ...), both through `Codable` and through ``jsonValue``.
public struct Asset: Sendable, Equatable, Codable {
    /// The provider's identifier: instance id, ARN, access key id, ...
    public var id: String
    /// What the asset is: `instance`, `volume`, `bucket`, `security_group`, `iam_user`, `iam_role`,
    /// `access_key`, `function`, `load_balancer`, ... (open-ended, not validated).
    public var kind: String
    /// The cloud account the asset lives in.
    public var account: String?
    /// The cloud region the asset lives in.
    public var region: String?
    /// A human name (the `Name` tag of an instance, the user name of an IAM user).
    public var name: String?
    /// The team or person responsible for the asset.
    public var owner: String?
    /// The environment, e.g. `production` or `staging`.
    public var environment: String?
    /// `low`, `medium`, `high` or `critical`; see ``Asset/criticalities``.
    public var criticality: String?
    /// Whether the asset is reachable from the internet.
    public var internetExposed: Bool
    /// Whether automated response must leave the asset alone.
    public var protected: Bool
    /// Provider tags.
    public var tags: [String: String]
    /// Private IP addresses.
    public var privateIPs: [String]
    /// Public IP addresses.
    public var publicIPs: [String]
    /// Network interface ids (ENIs).
    public var networkInterfaces: [String]
    /// The machine image the asset was launched from.
    public var imageID: String?
    /// Security group ids attached to the asset.
    public var securityGroups: [String]
    /// For access keys: the IAM user name that owns the key; for IAM users: the user name.
    public var user: String?
    /// Open vulnerabilities reported by scanners (findings attach and resolve them).
    public var vulnerabilities: [AssetVulnerability]
    /// When the inventory first saw the asset, epoch milliseconds.
    public var firstSeen: Int64?
    /// When the inventory last saw the asset, epoch milliseconds.
    public var lastSeen: Int64?

    /// The allowed values of ``criticality``, lowest first.
    public static let criticalities = ["low", "medium", "high", "critical"]

    /// Makes an asset; everything but the id and kind is optional.
    public init(
        id: String, kind: String, account: String? = nil, region: String? = nil, name: String? = nil,
        owner: String? = nil, environment: String? = nil, criticality: String? = nil,
        internetExposed: Bool = false, protected: Bool = false, tags: [String: String] = [:],
        privateIPs: [String] = [], publicIPs: [String] = [], networkInterfaces: [String] = [],
        imageID: String? = nil, securityGroups: [String] = [], user: String? = nil,
        vulnerabilities: [AssetVulnerability] = [], firstSeen: Int64? = nil, lastSeen: Int64? = nil
    ) {
        self.id = id
        self.kind = kind
        self.account = account
        self.region = region
        self.name = name
        self.owner = owner
        self.environment = environment
        self.criticality = criticality
        self.internetExposed = internetExposed
        self.protected = protected
        self.tags = tags
        self.privateIPs = privateIPs
        self.publicIPs = publicIPs
        self.networkInterfaces = networkInterfaces
        self.imageID = imageID
        self.securityGroups = securityGroups
        self.user = user
        self.vulnerabilities = vulnerabilities
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, kind, account, region, name, owner, environment, criticality
        case internetExposed = "internet_exposed"
        case protected, tags
        case privateIPs = "private_ips"
        case publicIPs = "public_ips"
        case networkInterfaces = "network_interfaces"
        case imageID = "image_id"
        case securityGroups = "security_groups"
        case user, vulnerabilities
        case firstSeen = "first_seen"
        case lastSeen = "last_seen"
    }

    /// Decodes an asset; every key but `id` and `kind` may be absent.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try c.decode(String.self, forKey: .id),
            kind: try c.decode(String.self, forKey: .kind),
            account: try c.decodeIfPresent(String.self, forKey: .account),
            region: try c.decodeIfPresent(String.self, forKey: .region),
            name: try c.decodeIfPresent(String.self, forKey: .name),
            owner: try c.decodeIfPresent(String.self, forKey: .owner),
            environment: try c.decodeIfPresent(String.self, forKey: .environment),
            criticality: try c.decodeIfPresent(String.self, forKey: .criticality),
            internetExposed: try c.decodeIfPresent(Bool.self, forKey: .internetExposed) ?? false,
            protected: try c.decodeIfPresent(Bool.self, forKey: .protected) ?? false,
            tags: try c.decodeIfPresent([String: String].self, forKey: .tags) ?? [:],
            privateIPs: try c.decodeIfPresent([String].self, forKey: .privateIPs) ?? [],
            publicIPs: try c.decodeIfPresent([String].self, forKey: .publicIPs) ?? [],
            networkInterfaces: try c.decodeIfPresent([String].self, forKey: .networkInterfaces) ?? [],
            imageID: try c.decodeIfPresent(String.self, forKey: .imageID),
            securityGroups: try c.decodeIfPresent([String].self, forKey: .securityGroups) ?? [],
            user: try c.decodeIfPresent(String.self, forKey: .user),
            vulnerabilities: try c.decodeIfPresent([AssetVulnerability].self, forKey: .vulnerabilities) ?? [],
            firstSeen: try c.decodeIfPresent(Int64.self, forKey: .firstSeen),
            lastSeen: try c.decodeIfPresent(Int64.self, forKey: .lastSeen)
        )
    }

    /// The asset as a JSON object with snake_case keys; `nil` fields are left out.
    public var jsonValue: JSON {
        var o: [String: JSON] = [
            "id": .string(id), "kind": .string(kind),
            "internet_exposed": .bool(internetExposed), "protected": .bool(protected),
            "tags": .object(tags.mapValues { .string($0) }),
            "private_ips": .array(privateIPs.map { .string($0) }),
            "public_ips": .array(publicIPs.map { .string($0) }),
            "network_interfaces": .array(networkInterfaces.map { .string($0) }),
            "security_groups": .array(securityGroups.map { .string($0) }),
        ]
        let optionals: [(String, String?)] = [
            ("account", account), ("region", region), ("name", name), ("owner", owner),
            ("environment", environment), ("criticality", criticality), ("image_id", imageID), ("user", user),
        ]
        for (key, value) in optionals { if let value { o[key] = .string(value) } }
        if !vulnerabilities.isEmpty { o["vulnerabilities"] = .array(vulnerabilities.map(\.jsonValue)) }
        if let firstSeen { o["first_seen"] = .int(firstSeen) }
        if let lastSeen { o["last_seen"] = .int(lastSeen) }
        return .object(o)
    }

    /// Reads an asset from a JSON object with snake_case keys, as written by ``jsonValue`` or a
    /// JSON import. Booleans may also be the strings CSV accepts; lists may also be `;`-separated
    /// strings and tags a `key=value;...` string. Unknown keys are rejected so typos are not lost.
    /// Errors name the field, never its value.
    public init(json: JSON) throws(InventoryError) {
        guard case .object(let o) = json else { throw InventoryError(code: "json_item_not_object") }
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        if let unknown = o.keys.sorted().first(where: { !known.contains($0) }) {
            throw InventoryError(code: "unknown_field", column: AssetFields.safeName(unknown))
        }
        func text(_ key: String) throws(InventoryError) -> String? {
            guard let value = o[key], value != .null else { return nil }
            guard let s = value.scalarText, value.boolValue == nil else {
                throw InventoryError(code: "bad_field_type", column: key)
            }
            let trimmed = AssetFields.trim(s)
            return trimmed.isEmpty ? nil : trimmed
        }
        func flag(_ key: String) throws(InventoryError) -> Bool {
            guard let value = o[key], value != .null else { return false }
            if let b = value.boolValue { return b }
            if let s = value.scalarText { return try AssetFields.boolean(s, column: key) }
            throw InventoryError(code: "bad_boolean", column: key)
        }
        func list(_ key: String) throws(InventoryError) -> [String] {
            guard let value = o[key], value != .null else { return [] }
            if let s = value.stringValue { return AssetFields.list(s) }
            guard let items = value.arrayValue else { throw InventoryError(code: "bad_field_type", column: key) }
            var out: [String] = []
            for item in items {
                guard let s = item.stringValue else { throw InventoryError(code: "bad_field_type", column: key) }
                let trimmed = AssetFields.trim(s)
                if !trimmed.isEmpty { out.append(trimmed) }
            }
            return out
        }
        func millis(_ key: String) throws(InventoryError) -> Int64? {
            guard let value = o[key], value != .null else { return nil }
            if let i = value.intValue { return i }
            if let s = value.stringValue, let t = Timestamp.parseISO8601(s) { return t }
            throw InventoryError(code: "bad_field_type", column: key)
        }
        var tags: [String: String] = [:]
        switch o["tags"] {
        case nil, .null?: break
        case .string(let s)?: tags = try AssetFields.tags(s, column: "tags")
        case .object(let members)?:
            for (key, value) in members {
                guard let s = value.scalarText else { throw InventoryError(code: "bad_field_type", column: "tags") }
                tags[key] = s
            }
        default: throw InventoryError(code: "bad_field_type", column: "tags")
        }
        var vulnerabilities: [AssetVulnerability] = []
        switch o["vulnerabilities"] {
        case nil, .null?: break
        case .array(let items)?:
            for item in items { vulnerabilities.append(try AssetVulnerability(json: item)) }
        default: throw InventoryError(code: "bad_field_type", column: "vulnerabilities")
        }
        guard let id = try text("id") else { throw InventoryError(code: "missing_field", column: "id") }
        guard let kind = try text("kind") else { throw InventoryError(code: "missing_field", column: "kind") }
        self.init(
            id: id, kind: kind, account: try text("account"), region: try text("region"),
            name: try text("name"), owner: try text("owner"), environment: try text("environment"),
            criticality: try AssetFields.criticality(try text("criticality"), column: "criticality"),
            internetExposed: try flag("internet_exposed"), protected: try flag("protected"), tags: tags,
            privateIPs: try list("private_ips"), publicIPs: try list("public_ips"),
            networkInterfaces: try list("network_interfaces"), imageID: try text("image_id"),
            securityGroups: try list("security_groups"), user: try text("user"),
            vulnerabilities: vulnerabilities, firstSeen: try millis("first_seen"), lastSeen: try millis("last_seen")
        )
    }

    /// The asset without its first/last-seen times: two assets whose `content` is equal are the same
    /// version, so re-importing an unchanged inventory does not grow the history.
    var content: Asset {
        var copy = self
        copy.firstSeen = nil
        copy.lastSeen = nil
        return copy
    }
}

/// An open vulnerability on an asset, as a scanner finding reported it.
public struct AssetVulnerability: Sendable, Equatable, Codable {
    /// The CVE id, else the scanner's own identifier or title of the flaw.
    public var id: String
    /// `critical`, `high`, `medium`, `low`, `informational` or `unknown`.
    public var severity: String
    /// Whether the finding says a public exploit exists.
    public var exploitable: Bool
    /// The finding that reported it, so the finding's resolution removes it.
    public var finding: String?
    /// When it was first reported on this asset, epoch milliseconds.
    public var since: Int64?

    /// Makes a vulnerability entry.
    public init(id: String, severity: String, exploitable: Bool = false, finding: String? = nil, since: Int64? = nil) {
        self.id = id
        self.severity = severity
        self.exploitable = exploitable
        self.finding = finding
        self.since = since
    }

    /// As a JSON object; `nil` fields are left out.
    public var jsonValue: JSON {
        var o: [String: JSON] = ["id": .string(id), "severity": .string(severity), "exploitable": .bool(exploitable)]
        if let finding { o["finding"] = .string(finding) }
        if let since { o["since"] = .int(since) }
        return .object(o)
    }

    /// Reads the form ``jsonValue`` writes.
    public init(json: JSON) throws(InventoryError) {
        guard let id = json["id"]?.stringValue, !id.isEmpty, let severity = json["severity"]?.stringValue else {
            throw InventoryError(code: "bad_field_type", column: "vulnerabilities")
        }
        self.init(id: id, severity: severity, exploitable: json["exploitable"]?.boolValue ?? false,
                  finding: json["finding"]?.stringValue, since: json["since"]?.intValue)
    }
}

/// Field syntax shared by the CSV and JSON readers: pure functions, no I/O.
enum AssetFields {
    /// `true/false/yes/no/1/0` in any case; empty is `false`.
    static func boolean(_ text: String, column: String) throws(InventoryError) -> Bool {
        switch trim(text).lowercased() {
        case "", "false", "no", "0": return false
        case "true", "yes", "1": return true
        default: throw InventoryError(code: "bad_boolean", column: column)
        }
    }

    /// One of ``Asset/criticalities`` in any case, lower-cased; empty is `nil`.
    static func criticality(_ text: String?, column: String) throws(InventoryError) -> String? {
        guard let text else { return nil }
        let value = trim(text).lowercased()
        if value.isEmpty { return nil }
        guard Asset.criticalities.contains(value) else { throw InventoryError(code: "bad_criticality", column: column) }
        return value
    }

    /// `a;b;c` with blanks around items and empty items dropped.
    static func list(_ text: String) -> [String] {
        text.split(separator: ";").map { trim(String($0)) }.filter { !$0.isEmpty }
    }

    /// `key=value;key=value`; the value may be empty and may contain `=`.
    static func tags(_ text: String, column: String) throws(InventoryError) -> [String: String] {
        var tags: [String: String] = [:]
        for entry in list(text) {
            guard let equals = entry.firstIndex(of: "=") else { throw InventoryError(code: "bad_tags", column: column) }
            let key = trim(String(entry[..<equals]))
            guard !key.isEmpty else { throw InventoryError(code: "bad_tags", column: column) }
            tags[key] = trim(String(entry[entry.index(after: equals)...]))
        }
        return tags
    }

    /// A field name from a file, echoed in errors only when it looks like an identifier
    /// (`[a-z0-9_]`, at most 40 characters), so an error can never carry arbitrary file content.
    static func safeName(_ name: String, position: Int? = nil) -> String? {
        let ok = !name.isEmpty && name.utf8.count <= 40
            && name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }
        if ok { return name }
        return position.map { "#\($0)" }
    }

    static func trim(_ text: String) -> String {
        var scalars = Substring(text)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
