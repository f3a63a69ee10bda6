import OCSF

/// One change to the inventory as every copy of the enrich stage applies it: the full state of
/// an asset as of a time, or its deletion.
///
/// Changes travel on the compacted `<prefix>inventory` topic keyed by asset id. Each carries the
/// asset's whole state (never a delta), so after compaction keeps only the latest record per
/// key a copy that reads the topic from the start still ends up with every asset.
public struct InventoryChange: Sendable, Equatable {
    /// What happens to the asset.
    public enum Operation: Sendable, Equatable {
        /// The asset's full state from `time` on.
        case upsert(Asset)
        /// The asset stops existing at `time`.
        case delete(id: String)
    }

    /// What happens.
    public var operation: Operation
    /// When, epoch milliseconds: the event time of the Config item or finding, the wall clock
    /// of an import or sync.
    public var time: Int64
    /// Where the change came from: `awsconfig`, `finding`, `import`, `sync`.
    public var source: String

    /// Makes a change.
    public init(_ operation: Operation, time: Int64, source: String) {
        self.operation = operation
        self.time = time
        self.source = source
    }

    /// The asset id, which is also the record key.
    public var assetID: String {
        switch operation {
        case .upsert(let asset): asset.id
        case .delete(let id): id
        }
    }

    /// The topic record's value: `{"op":"upsert","time":...,"source":...,"asset":{...}}` or
    /// `{"op":"delete","time":...,"source":...,"id":...}`.
    public var jsonValue: JSON {
        var o: [String: JSON] = ["time": .int(time), "source": .string(source)]
        switch operation {
        case .upsert(let asset):
            o["op"] = "upsert"
            o["asset"] = asset.jsonValue
        case .delete(let id):
            o["op"] = "delete"
            o["id"] = .string(id)
        }
        return .object(o)
    }

    /// Reads a topic record's value.
    public init(json: JSON) throws(InventoryError) {
        guard let time = json["time"]?.intValue else { throw InventoryError(code: "bad_change", column: "time") }
        let source = json["source"]?.stringValue ?? "unknown"
        switch json["op"]?.stringValue {
        case "upsert":
            guard let asset = json["asset"] else { throw InventoryError(code: "bad_change", column: "asset") }
            self.init(.upsert(try Asset(json: asset)), time: time, source: source)
        case "delete":
            guard let id = json["id"]?.stringValue, !id.isEmpty else { throw InventoryError(code: "bad_change", column: "id") }
            self.init(.delete(id: id), time: time, source: source)
        default:
            throw InventoryError(code: "bad_change", column: "op")
        }
    }
}

extension InventoryStore {
    /// Applies a change as it stands (full state, vulnerabilities included); `true` when the
    /// store changed (a new version, an insert or a deletion), `false` when it already agreed.
    @discardableResult
    public func apply(_ change: InventoryChange) throws(InventoryError) -> Bool {
        switch change.operation {
        case .upsert(let asset): try upsert(asset, at: change.time, keepingVulnerabilities: false) != .unchanged
        case .delete(let id): try delete(id: id, at: change.time)
        }
    }
}

/// Tag conventions that fill an asset's owner, environment, criticality and protected flag from
/// its provider tags; shared by the AWS sync and AWS Config items.
public enum AssetTags {
    /// Tag keys read for ``Asset/owner``, first present wins.
    public static let owner = ["owner", "Owner"]
    /// Tag keys read for ``Asset/environment``, first present wins.
    public static let environment = ["environment", "env", "Environment"]
    /// Tag keys read for ``Asset/criticality``, first present wins.
    public static let criticality = ["criticality", "Criticality"]
    /// The tag that marks an asset as protected from automated response (value `true`, any case).
    public static let protected = "vigil:protected"

    /// The asset with its tags set and name (`Name` tag), owner, environment, criticality (only
    /// `low`/`medium`/`high`/`critical`, any case) and protected read from them. A field the
    /// tags do not give keeps its value when `keeping` is true, else it is cleared.
    public static func apply(_ tags: [String: String], to base: Asset, keeping: Bool = false) -> Asset {
        var asset = base
        func first(_ keys: [String]) -> String? {
            keys.lazy.compactMap { tags[$0].map(AssetFields.trim) }.first { !$0.isEmpty }
        }
        asset.tags = tags
        let criticality = first(criticality).map { $0.lowercased() }.flatMap { Asset.criticalities.contains($0) ? $0 : nil }
        asset.name = first(["Name"]) ?? (keeping ? base.name : nil)
        asset.owner = first(owner) ?? (keeping ? base.owner : nil)
        asset.environment = first(environment) ?? (keeping ? base.environment : nil)
        asset.criticality = criticality ?? (keeping ? base.criticality : nil)
        let flagged = tags[protected].map { AssetFields.trim($0).lowercased() == "true" }
        asset.protected = flagged ?? (keeping ? base.protected : false)
        return asset
    }
}
