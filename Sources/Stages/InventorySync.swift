import AWS
import Inventory

// `vigil inventory sync aws`: reads EC2 instances and security groups (one region) and IAM users
// and their access keys (global) and makes the inventory agree with them. It lives here, not in
// Inventory, because Inventory must not depend on AWS; the mapping is pure and tested on its own.

/// The pure part of the AWS sync: AWS descriptions to inventory assets. No I/O.
public enum AWSAssetMapping {
    /// The asset kinds the AWS sync owns; it never creates, changes or deletes other kinds.
    public static let kinds = ["instance", "security_group", "iam_user", "access_key"]

    /// Tag keys read for ``Asset/owner``, first present wins.
    public static let ownerTags = AssetTags.owner
    /// Tag keys read for ``Asset/environment``, first present wins.
    public static let environmentTags = AssetTags.environment
    /// Tag keys read for ``Asset/criticality``, first present wins.
    public static let criticalityTags = AssetTags.criticality
    /// The tag that marks an asset as protected from automated response (value `true`, any case).
    public static let protectedTag = AssetTags.protected

    /// An instance. Internet exposure is "has a public IPv4 address": it is what EC2 reports
    /// directly, and security-group and route-table reachability are not evaluated.
    public static func asset(_ instance: EC2Instance, account: String?, region: String?) -> Asset {
        var asset = tagged(Asset(id: instance.instanceID, kind: "instance", account: account, region: region), instance.tags)
        asset.internetExposed = instance.publicIP != nil
        asset.privateIPs = instance.privateIP.map { [$0] } ?? []
        asset.publicIPs = instance.publicIP.map { [$0] } ?? []
        asset.networkInterfaces = instance.networkInterfaces.map(\.id)
        asset.imageID = instance.imageID
        asset.securityGroups = instance.securityGroupIDs
        return asset
    }

    /// A security group, named by its group name unless it has a `Name` tag. Never marked
    /// internet-exposed: its rules are not read.
    public static func asset(_ group: EC2SecurityGroup, account: String?, region: String?) -> Asset {
        var asset = tagged(Asset(id: group.groupID, kind: "security_group", account: account, region: region), group.tags)
        if asset.name == nil, !group.name.isEmpty { asset.name = group.name }
        return asset
    }

    /// An IAM user: id is its ARN, name and user its user name, account from the ARN (else
    /// `account`), no region (IAM is global). ListUsers returns no tags, so no owner.
    public static func asset(_ user: IAMUser, account: String?) -> Asset {
        Asset(id: user.arn, kind: "iam_user", account: user.accountID ?? account, name: user.userName, user: user.userName)
    }

    /// An access key: id is the key id, user the IAM user that owns it, no region.
    public static func asset(_ key: IAMAccessKey, account: String?) -> Asset {
        Asset(id: key.accessKeyID, kind: "access_key", account: account, user: key.userName.isEmpty ? nil : key.userName)
    }

    /// Fills name (`Name` tag), owner, environment, criticality, protected and tags from provider
    /// tags (see ``AssetTags``).
    static func tagged(_ base: Asset, _ tags: [String: String]) -> Asset {
        AssetTags.apply(tags, to: base)
    }

    /// Whether the sync owns `asset` in this scope: one of ``kinds``, in `account`, and for the
    /// regional kinds (instances, security groups) in `region`.
    public static func isOwned(_ asset: Asset, account: String?, region: String?) -> Bool {
        switch asset.kind {
        case "instance", "security_group": asset.account == account && asset.region == region
        case "iam_user", "access_key": asset.account == account
        default: false
        }
    }
}


/// What one sync did, per asset kind.
public struct InventorySyncSummary: Sendable, Equatable {
    /// Counts for one kind.
    public struct Counts: Sendable, Equatable {
        /// Assets AWS returned (terminated instances excluded).
        public var listed = 0
        /// Assets new to the inventory (or back after a deletion).
        public var inserted = 0
        /// Assets whose content changed.
        public var updated = 0
        /// Assets identical to the stored ones (only `last_seen` moved).
        public var unchanged = 0
        /// Assets of this kind in the account/region that AWS no longer returned.
        public var deleted = 0

        /// Makes counts.
        public init(listed: Int = 0, inserted: Int = 0, updated: Int = 0, unchanged: Int = 0, deleted: Int = 0) {
            self.listed = listed
            self.inserted = inserted
            self.updated = updated
            self.unchanged = unchanged
            self.deleted = deleted
        }
    }

    /// The account the assets were attributed to.
    public var account: String
    /// The region instances and security groups were read from.
    public var region: String
    /// Counts by kind, for every kind in ``AWSAssetMapping/kinds``.
    public var kinds: [String: Counts]
    /// The changes the sync made to the store, as full asset states, for the `inventory` topic.
    public var changes: [InventoryChange] = []

    /// Makes a summary.
    public init(account: String, region: String, kinds: [String: Counts] = [:]) {
        self.account = account
        self.region = region
        self.kinds = kinds
    }

    /// The counts of one kind (zeros when absent).
    public subscript(kind: String) -> Counts { kinds[kind] ?? Counts() }

    /// One line per kind, in ``AWSAssetMapping/kinds`` order, for people.
    public var lines: [String] {
        AWSAssetMapping.kinds.map { kind in
            let c = self[kind]
            return "\(kind): listed \(c.listed), inserted \(c.inserted), updated \(c.updated), unchanged \(c.unchanged), deleted \(c.deleted)"
        }
    }
}

/// Reads the AWS estate and makes the inventory converge on it.
public enum InventorySync {
    /// What the sync reads from AWS, before mapping.
    public struct Snapshot: Sendable, Equatable {
        /// The account the credentials belong to.
        public var account: String
        /// The client's region.
        public var region: String
        /// Instances in the region (terminated ones included; the mapping drops them).
        public var instances: [EC2Instance]
        /// Security groups in the region.
        public var securityGroups: [EC2SecurityGroup]
        /// IAM users of the account.
        public var users: [IAMUser]
        /// Access keys of those users.
        public var accessKeys: [IAMAccessKey]

        /// Makes a snapshot.
        public init(account: String, region: String, instances: [EC2Instance] = [], securityGroups: [EC2SecurityGroup] = [],
                    users: [IAMUser] = [], accessKeys: [IAMAccessKey] = []) {
            self.account = account
            self.region = region
            self.instances = instances
            self.securityGroups = securityGroups
            self.users = users
            self.accessKeys = accessKeys
        }

        /// The assets the snapshot stands for, by id. Terminated instances are left out, so
        /// they are deleted from the inventory.
        public var assets: [Asset] {
            var out: [Asset] = []
            out += instances.filter { $0.state != "terminated" }.map { AWSAssetMapping.asset($0, account: account, region: region) }
            out += securityGroups.map { AWSAssetMapping.asset($0, account: account, region: region) }
            out += users.map { AWSAssetMapping.asset($0, account: account) }
            out += accessKeys.map { AWSAssetMapping.asset($0, account: account) }
            return out
        }
    }

    /// Reads everything the sync covers, every page: the account (STS GetCallerIdentity, unless
    /// given), instances and security groups of the client's region, IAM users and their keys.
    public static func read(client: AWSClient, account: String? = nil) async throws(AWSError) -> Snapshot {
        let owner: String
        if let account { owner = account } else { owner = try await client.callerIdentity().account }
        let users = try await client.listUsers()
        var keys: [IAMAccessKey] = []
        for user in users { keys += try await client.listAccessKeys(userName: user.userName) }
        return Snapshot(account: owner, region: client.region, instances: try await client.describeInstances(),
                        securityGroups: try await client.describeSecurityGroups(), users: users, accessKeys: keys)
    }

    /// Applies a snapshot to the store as of `time` (epoch ms): every asset it stands for is
    /// upserted in one store call, then every asset the sync owns in its account/region (see
    /// ``AWSAssetMapping/isOwned(_:account:region:)``) that the snapshot lacks is deleted.
    /// Assets of other kinds, accounts or regions are never touched.
    public static func apply(_ snapshot: Snapshot, to store: InventoryStore, at time: Int64) throws(InventoryError) -> InventorySyncSummary {
        let assets = snapshot.assets
        var summary = InventorySyncSummary(account: snapshot.account, region: snapshot.region)
        for kind in AWSAssetMapping.kinds { summary.kinds[kind] = .init() }
        let current = Dictionary(try store.all().map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        // Classified against the state read just before the write; the store's own summary
        // must agree unless another writer raced us.
        for asset in assets {
            summary.kinds[asset.kind, default: .init()].listed += 1
            if let stored = current[asset.id] {
                if sameContent(stored, asset) { summary.kinds[asset.kind]?.unchanged += 1 } else { summary.kinds[asset.kind]?.updated += 1 }
            } else {
                summary.kinds[asset.kind]?.inserted += 1
            }
        }
        let changed = try store.upsertReporting(assets, at: time).changed
        for id in changed {
            if let stored = try store.asset(id: id) { summary.changes.append(InventoryChange(.upsert(stored), time: time, source: "sync")) }
        }
        let listed = Set(assets.map(\.id))
        for asset in current.values.sorted(by: { $0.id < $1.id })
        where AWSAssetMapping.isOwned(asset, account: snapshot.account, region: snapshot.region) && !listed.contains(asset.id) {
            try store.delete(id: asset.id, at: time)
            summary.kinds[asset.kind, default: .init()].deleted += 1
            summary.changes.append(InventoryChange(.delete(id: asset.id), time: time, source: "sync"))
        }
        return summary
    }

    /// Reads AWS and applies it to the store: ``read(client:account:)`` then
    /// ``apply(_:to:at:)``.
    public static func sync(client: AWSClient, store: InventoryStore, at time: Int64, account: String? = nil) async throws -> InventorySyncSummary {
        let snapshot = try await read(client: client, account: account)
        return try apply(snapshot, to: store, at: time)
    }

    private static func sameContent(_ a: Asset, _ b: Asset) -> Bool {
        var a = a, b = b
        a.firstSeen = nil; a.lastSeen = nil
        b.firstSeen = nil; b.lastSeen = nil
        b.vulnerabilities = a.vulnerabilities  // kept by the upsert: findings own them
        return a == b
    }
}
