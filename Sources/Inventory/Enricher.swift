import OCSF
import Synchronization

/// Which lookup found an event's asset, in the order they are tried.
public enum AssetMatch: String, Sendable, CaseIterable {
    /// An EC2 instance id among `resources[].uid` (bare, or at the end of an instance ARN).
    case instanceID = "instance_id"
    /// An instance id at the end of `actor.user.uid` (`AROA...:i-0abc...`, an instance-role session).
    case actorInstanceID = "actor_instance_id"
    /// `actor.user.credential_uid`, an access key id.
    case accessKey = "access_key"
    /// `src_endpoint.ip`.
    case sourceIP = "src_ip"
    /// `dst_endpoint.ip`.
    case destinationIP = "dst_ip"
    /// `actor.user.name`, an IAM user name or ARN.
    case userName = "user_name"
}

/// One lookup to try for an event: what to look up and how it will be reported.
struct AssetCandidate: Sendable, Equatable {
    enum Key: Sendable, Hashable {
        case id(String), accessKey(String), ip(String), userName(String)
    }
    var key: Key
    var match: AssetMatch
}

/// The join logic of enrichment, pure: which lookups an event calls for, and how a found asset is
/// written into it. No I/O, so it is tested and benchmarked on its own.
public enum AssetJoin {
    /// Whether `text` is an EC2 instance id: `i-` and 8 or 17 lower-case hex digits.
    public static func isInstanceID(_ text: some StringProtocol) -> Bool {
        let utf8 = Array(text.utf8)
        guard utf8.count == 10 || utf8.count == 19, utf8[0] == UInt8(ascii: "i"), utf8[1] == UInt8(ascii: "-") else {
            return false
        }
        return utf8.dropFirst(2).allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    /// The instance id at the end of `text` after `:` or `/` (a role session name or an ARN), or
    /// `text` itself when it is one.
    public static func trailingInstanceID(_ text: String) -> String? {
        let tail = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == ":" || $0 == "/" }).last
        guard let tail, isInstanceID(tail) else { return nil }
        return String(tail)
    }

    static func candidates(_ event: JSON) -> [AssetCandidate] {
        var out: [AssetCandidate] = []
        for resource in event["resources"]?.arrayValue ?? [] {
            if let uid = resource["uid"]?.stringValue, let id = trailingInstanceID(uid),
               uid == id || uid.hasSuffix("instance/" + id) {
                out.append(AssetCandidate(key: .id(id), match: .instanceID))
            }
        }
        if let uid = event.value(at: "actor.user.uid")?.stringValue, let id = trailingInstanceID(uid) {
            out.append(AssetCandidate(key: .id(id), match: .actorInstanceID))
        }
        if let key = nonEmpty(event.value(at: "actor.user.credential_uid")) {
            out.append(AssetCandidate(key: .accessKey(key), match: .accessKey))
        }
        if let ip = nonEmpty(event.value(at: "src_endpoint.ip")) {
            out.append(AssetCandidate(key: .ip(ip), match: .sourceIP))
        }
        if let ip = nonEmpty(event.value(at: "dst_endpoint.ip")) {
            out.append(AssetCandidate(key: .ip(ip), match: .destinationIP))
        }
        if let name = nonEmpty(event.value(at: "actor.user.name")) {
            out.append(AssetCandidate(key: .userName(name), match: .userName))
        }
        return out
    }

    private static func nonEmpty(_ value: JSON?) -> String? {
        guard let text = value?.stringValue, !text.isEmpty else { return nil }
        return text
    }

    /// `vigil.asset`: the fields detection rules and playbooks read; `nil` fields are left out.
    public static func summary(_ asset: Asset) -> JSON {
        var o: [String: JSON] = [
            "id": .string(asset.id), "kind": .string(asset.kind),
            "internet_exposed": .bool(asset.internetExposed), "protected": .bool(asset.protected),
            "tags": .object(asset.tags.mapValues { .string($0) }),
            "private_ips": .array(asset.privateIPs.map { .string($0) }),
            "public_ips": .array(asset.publicIPs.map { .string($0) }),
        ]
        let optionals: [(String, String?)] = [
            ("name", asset.name), ("owner", asset.owner), ("environment", asset.environment),
            ("criticality", asset.criticality), ("account", asset.account), ("region", asset.region),
            ("user", asset.user),
        ]
        for (key, value) in optionals { if let value { o[key] = .string(value) } }
        return .object(o)
    }

    /// Writes a found asset into the event: `vigil.asset`, `vigil.asset_status = "known"`,
    /// `vigil.asset_match`, and for an instance the OCSF `device` (filling only fields the
    /// event does not already have).
    public static func apply(_ asset: Asset, match: AssetMatch, to event: JSON) -> JSON {
        var out = event
        out.set("vigil.asset", summary(asset))
        out.set("vigil.asset_status", "known")
        out.set("vigil.asset_match", .string(match.rawValue))
        if asset.kind == "instance" {
            var device = out["device"]?.objectValue ?? [:]
            var fill: [String: JSON] = [
                "instance_uid": .string(asset.id),
                "type_id": 6,
                "type": "Virtual",
            ]
            if let name = asset.name { fill["name"] = .string(name); fill["hostname"] = .string(name) }
            if let region = asset.region { fill["region"] = .string(region) }
            if let ip = asset.privateIPs.first ?? asset.publicIPs.first { fill["ip"] = .string(ip) }
            if let image = asset.imageID { fill["image"] = ["uid": .string(image)] }
            for (key, value) in fill where device[key] == nil { device[key] = value }
            out["device"] = .object(device)
        }
        return out
    }

    /// Marks an event whose asset is not in the inventory (or whose lookup failed, with `"error"`),
    /// removing any `vigil.asset` left from an earlier enrichment so re-enriching is idempotent.
    public static func mark(_ event: JSON, status: String) -> JSON {
        var out = event
        out.set("vigil.asset", nil)
        out.set("vigil.asset_match", nil)
        out.set("vigil.asset_status", .string(status))
        return out
    }
}

/// Joins events with the asset inventory.
///
/// A bounded in-memory cache sits in front of the store and remembers misses too; when it fills
/// it is emptied whole. Call ``invalidate(assetID:)`` whenever the inventory changes an asset.
/// Lookups use the current inventory, not the inventory as of the event's time.
public final class Enricher: Sendable {
    private struct State {
        var cache: [AssetCandidate.Key: Asset?] = [:]
        /// Bumped by every invalidation, so a lookup that raced one does not cache a stale answer.
        var generation: UInt64 = 0
        var known = 0
        var unknown = 0
        var errors = 0
    }

    private let store: InventoryStore
    private let capacity: Int
    private let state = Mutex(State())

    /// An enricher over `store` whose cache holds at most `cacheCapacity` lookups (default 100,000).
    public init(store: InventoryStore, cacheCapacity: Int = 100_000) {
        self.store = store
        self.capacity = max(1, cacheCapacity)
    }

    /// The event with its asset joined in (see docs/inventory.md). Never throws: when the store
    /// fails the event gets `vigil.asset_status = "error"` and ``errorCount`` goes up. A value that
    /// is not a JSON object is returned as it is and not counted.
    public func enrich(_ event: JSON) -> JSON {
        guard case .object = event else { return event }
        do {
            for candidate in AssetJoin.candidates(event) {
                if let asset = try find(candidate.key) {
                    state.withLock { $0.known += 1 }
                    return AssetJoin.apply(asset, match: candidate.match, to: event)
                }
            }
            state.withLock { $0.unknown += 1 }
            return AssetJoin.mark(event, status: "unknown")
        } catch {
            state.withLock { $0.errors += 1 }
            return AssetJoin.mark(event, status: "error")
        }
    }

    /// Forgets cached lookups that found this asset, and every cached miss (the asset may now
    /// answer one of them).
    public func invalidate(assetID: String) {
        state.withLock { state in
            state.generation &+= 1
            state.cache = state.cache.filter { _, value in
                guard let asset = value else { return false }
                return asset.id != assetID
            }
        }
    }

    /// Forgets every cached lookup (after a bulk import, say).
    public func invalidateAll() {
        state.withLock { state in
            state.generation &+= 1
            state.cache.removeAll()
        }
    }

    /// Events enriched with a known asset since this enricher was made.
    public var knownCount: Int { state.withLock { $0.known } }
    /// Events for which no asset was found.
    public var unknownCount: Int { state.withLock { $0.unknown } }
    /// Events whose lookup failed in the store.
    public var errorCount: Int { state.withLock { $0.errors } }

    private func find(_ key: AssetCandidate.Key) throws(InventoryError) -> Asset? {
        let (cached, generation) = state.withLock { ($0.cache[key], $0.generation) }
        if let cached { return cached }
        // The store is read outside the lock so the lock is never held across I/O; two threads
        // missing the same key both read it, which is harmless.
        let found: Asset?
        switch key {
        case .id(let id): found = try store.asset(id: id)
        case .accessKey(let key): found = try store.lookup(accessKeyID: key)
        case .ip(let ip): found = try store.lookup(ip: ip)
        case .userName(let name): found = try store.lookup(userName: name)
        }
        state.withLock { state in
            guard state.generation == generation else { return }
            if state.cache.count >= capacity { state.cache.removeAll(keepingCapacity: true) }
            state.cache[key] = .some(found)
        }
        return found
    }
}
