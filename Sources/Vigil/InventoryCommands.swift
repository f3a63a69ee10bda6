import AWS
import ArgumentParser
import Foundation
import Inventory
import OCSF
import Pipeline
import Stages

/// `vigil inventory`: import, read and sync the asset inventory.
struct InventoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inventory",
        abstract: "Import, list, show, trace the history of, or sync from AWS the asset inventory.",
        discussion: """
            Every subcommand takes --inventory PATH (default vigil-inventory.sqlite). See docs/inventory.md.

            Examples:
              vigil inventory import samples/inventory.csv --inventory inv.sqlite
              vigil inventory list --inventory inv.sqlite --json
              vigil inventory show i-0a1b2c3d4e5f60001 --inventory inv.sqlite
              vigil inventory history i-0a1b2c3d4e5f60001 --inventory inv.sqlite
              vigil inventory sync aws --aws-endpoint http://127.0.0.1:5000 --region us-east-1 --inventory inv.sqlite
            """,
        subcommands: [InventoryImport.self, InventoryList.self, InventoryShow.self, InventoryHistory.self, InventorySyncCommand.self])
}

/// The option every inventory command takes.
struct InventoryOptions: ParsableArguments {
    @Option(help: "Inventory SQLite file.") var inventory: String = "vigil-inventory.sqlite"

    func open() throws -> InventoryStore { try InventoryStore(path: inventory) }
}

/// Publishing local inventory changes to `<prefix>inventory`, for the running enrich copies.
struct PublishOptions: ParsableArguments {
    @Flag(help: "Also publish every changed asset to <prefix>inventory, so running vigil-enrich copies get it.")
    var publish = false
    @OptionGroup var kafka: KafkaOptions

    /// Publishes `changes` when asked to; returns a note for the summary line.
    func publish(_ changes: [InventoryChange]) async throws -> String {
        guard publish else { return "" }
        let sent = try await InventoryPublisher.publish(changes, kafka: kafka.kafkaConfig(clientID: "vigil-inventory"),
                                                        topics: kafka.topics, logger: cliLogger("vigil.inventory"))
        return "; published \(sent) to \(kafka.topics.inventory)"
    }
}

struct InventoryImport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import assets from a CSV or JSON file (all or nothing).",
        discussion: """
            CSV needs a header row naming at least id and kind; JSON is an array of objects with the same keys. Errors name the line (CSV) or item (JSON) and the column, never a value.

            Examples:
              vigil inventory import samples/inventory.csv --inventory inv.sqlite
              vigil inventory import assets.json
              vigil inventory import assets.json --publish --brokers kafka-1:9092   # running enrich copies get it too
            """)
    @Argument(help: "The CSV or JSON file.") var file: String
    @OptionGroup var options: InventoryOptions
    @OptionGroup var publishing: PublishOptions

    func run() async throws {
        let store = try options.open()
        let time = wallClockMillis()
        let before = Set(try store.all().map(\.id))
        let changes = try store.importChanges(path: file, at: time)
        let listed = try InventoryStore.readAssets(path: file).count
        let imported = changes.filter { !before.contains($0.assetID) }.count
        let note = try await publishing.publish(changes)
        print("imported \(imported), updated \(changes.count - imported), unchanged \(listed - changes.count) into \(options.inventory)\(note)")
    }
}

struct InventoryList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the current assets, by id.",
        discussion: """
            A table of id, kind, name, owner, environment, criticality, exposure and region; --json prints one asset object per line with every field.

            Examples:
              vigil inventory list --inventory inv.sqlite
              vigil inventory list --kind instance --json
            """)
    @OptionGroup var options: InventoryOptions
    @Option(help: "Only assets of this kind (instance, security_group, iam_user, access_key, ...).") var kind: String?
    @Flag(help: "JSON lines instead of a table.") var json = false

    func run() async throws {
        let assets = try options.open().all().filter { kind == nil || $0.kind == kind }
        if json {
            for asset in assets { print(asset.jsonValue.jsonText) }
            return
        }
        var table = TextTable(["ID", "KIND", "NAME", "OWNER", "ENVIRONMENT", "CRITICALITY", "EXPOSED", "REGION"])
        for a in assets {
            table.add([a.id, a.kind, a.name ?? "-", a.owner ?? "-", a.environment ?? "-", a.criticality ?? "-",
                       a.internetExposed ? "yes" : "no", a.region ?? "-"])
        }
        print(table.text, terminator: "")
    }
}

struct InventoryShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one asset with all its fields.",
        discussion: """
            Without --at, the current asset; with --at, the version valid at that time. Exits with status 1 when there is no such asset (then).

            Examples:
              vigil inventory show i-0a1b2c3d4e5f60001 --inventory inv.sqlite
              vigil inventory show AKIAIOSFODNN7EXAMPLE --json
              vigil inventory show i-0a1b2c3d4e5f60001 --at 2026-01-15T10:00:00Z
            """)
    @Argument(help: "The asset id (instance id, ARN, access key id, ...).") var id: String
    @OptionGroup var options: InventoryOptions
    @Option(help: "As of this time: ISO 8601 or epoch milliseconds.") var at: String?
    @Flag(help: "One JSON object instead of a table.") var json = false

    func validate() throws {
        if let at, InventoryTime.parse(at) == nil { throw ValidationError("--at must be ISO 8601 or epoch milliseconds") }
    }

    func run() async throws {
        let store = try options.open()
        let found = try at.flatMap(InventoryTime.parse).map { time throws(InventoryError) in try store.asset(id: id, at: time) }
            ?? store.asset(id: id)
        guard let asset = found else {
            Offline.writeError("vigil inventory show: no asset with that id in \(options.inventory)" + (at == nil ? "" : " at that time"))
            throw ExitCode.failure
        }
        if json {
            print(asset.jsonValue.jsonText)
            return
        }
        var table = TextTable(["FIELD", "VALUE"])
        for (field, value) in InventoryText.fields(asset) { table.add([field, value]) }
        print(table.text, terminator: "")
    }
}

struct InventoryHistory: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Show every version of one asset with its validity times, oldest first.",
        discussion: """
            A version is valid from VALID FROM (inclusive) until VALID TO (exclusive; '-' while current). A deletion is a version without an asset. --json prints one object per version: valid_from and valid_to (epoch ms, valid_to null while current), deleted, and asset (null for a deletion). Exits with status 1 when the id has no history.

            Examples:
              vigil inventory history i-0a1b2c3d4e5f60001 --inventory inv.sqlite
              vigil inventory history arn:aws:iam::111122223333:user/alice --json
            """)
    @Argument(help: "The asset id.") var id: String
    @OptionGroup var options: InventoryOptions
    @Flag(help: "JSON lines instead of a table.") var json = false

    func run() async throws {
        let versions = try options.open().history(id: id)
        guard !versions.isEmpty else {
            Offline.writeError("vigil inventory history: no asset with that id in \(options.inventory)")
            throw ExitCode.failure
        }
        if json {
            for version in versions {
                let object: JSON = [
                    "valid_from": .int(version.validFrom), "valid_to": version.validTo.map(JSON.int) ?? .null,
                    "deleted": .bool(version.asset == nil), "asset": version.asset?.jsonValue ?? .null,
                ]
                print(object.jsonText)
            }
            return
        }
        var table = TextTable(["VALID FROM", "VALID TO", "CHANGE", "NAME", "OWNER", "ENVIRONMENT", "CRITICALITY", "EXPOSED", "DIFFERS IN"])
        var previous: Asset?
        for version in versions {
            let from = Timestamp.formatISO8601(version.validFrom)
            let to = version.validTo.map(Timestamp.formatISO8601) ?? "-"
            guard let a = version.asset else {
                table.add([from, to, "deleted", "-", "-", "-", "-", "-", "-"])
                previous = nil
                continue
            }
            let change = previous == nil ? "created" : "updated"
            let differs = previous.map { InventoryText.differingFields($0, a).joined(separator: ",") } ?? "-"
            table.add([from, to, change, a.name ?? "-", a.owner ?? "-", a.environment ?? "-", a.criticality ?? "-",
                       a.internetExposed ? "yes" : "no", differs.isEmpty ? "-" : differs])
            previous = a
        }
        print(table.text, terminator: "")
    }
}

struct InventorySyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Make the inventory agree with a cloud provider.",
        subcommands: [InventorySyncAWS.self])
}

struct InventorySyncAWS: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aws",
        abstract: "Sync EC2 instances and security groups (one region) and IAM users and access keys from AWS.",
        discussion: """
            Reads DescribeInstances and DescribeSecurityGroups in the region, IAM ListUsers and ListAccessKeys, and the account from STS GetCallerIdentity (unless --account is given), every page, then upserts every asset in one transaction and deletes the instance, security_group, iam_user and access_key assets of that account (and, for instances and groups, that region) that AWS no longer returns, terminated instances included. Assets of other kinds are never touched. Prints one line of counts per kind. Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN) or the shared credentials file (AWS_PROFILE), never from the command line. The field mapping is in docs/inventory.md.

            Examples:
              vigil inventory sync aws --region eu-west-1 --inventory /var/lib/vigil/inventory.sqlite
              vigil inventory sync aws --aws-endpoint http://127.0.0.1:5000 --region us-east-1    # moto
              vigil inventory sync aws --json
              vigil inventory sync aws --publish --brokers kafka-1:9092    # running enrich copies get the changes
            """)
    @OptionGroup var options: InventoryOptions
    @OptionGroup var publishing: PublishOptions
    @Option(help: "AWS endpoint override, e.g. a local moto server (or VIGIL_AWS_ENDPOINT).") var awsEndpoint: String?
    @Option(help: "AWS region for EC2 (or AWS_REGION / AWS_DEFAULT_REGION; default us-east-1).") var region: String?
    @Option(help: "The account id to attribute assets to, instead of asking STS.") var account: String?
    @Flag(help: "The summary as one JSON object instead of lines.") var json = false

    func validate() throws {
        if let account, account.isEmpty || !account.allSatisfy(\.isNumber) {
            throw ValidationError("--account must be a numeric AWS account id")
        }
    }

    func run() async throws {
        var environment = ProcessInfo.processInfo.environment
        if let awsEndpoint { environment["VIGIL_AWS_ENDPOINT"] = awsEndpoint }
        if let region { environment["AWS_REGION"] = region }
        let client = try AWSClient.fromEnvironment(environment)
        let store = try options.open()
        let summary = try await InventorySync.sync(client: client, store: store, at: wallClockMillis(), account: account)
        let note = try await publishing.publish(summary.changes)
        if json {
            var kinds: [String: JSON] = [:]
            for (kind, c) in summary.kinds {
                kinds[kind] = ["listed": .int(Int64(c.listed)), "inserted": .int(Int64(c.inserted)), "updated": .int(Int64(c.updated)),
                               "unchanged": .int(Int64(c.unchanged)), "deleted": .int(Int64(c.deleted))]
            }
            var object: JSON = ["account": .string(summary.account), "region": .string(summary.region), "kinds": .object(kinds)]
            if publishing.publish { object["published"] = .int(Int64(summary.changes.count)) }
            print(object.jsonText)
        } else {
            print("synced account \(summary.account), region \(summary.region) into \(options.inventory)\(note)")
            for line in summary.lines { print("  " + line) }
        }
    }
}

/// Times given on the command line: ISO 8601 or epoch milliseconds.
enum InventoryTime {
    static func parse(_ text: String) -> Int64? {
        if let millis = Int64(text) { return millis }
        return Timestamp.parseISO8601(text)
    }
}

/// How assets read for people.
enum InventoryText {
    /// Every field of the asset, in the documented order; lists joined with ", ".
    static func fields(_ a: Asset) -> [(String, String)] {
        func list(_ items: [String]) -> String { items.isEmpty ? "-" : items.joined(separator: ", ") }
        return [
            ("id", a.id), ("kind", a.kind), ("account", a.account ?? "-"), ("region", a.region ?? "-"),
            ("name", a.name ?? "-"), ("owner", a.owner ?? "-"), ("environment", a.environment ?? "-"),
            ("criticality", a.criticality ?? "-"), ("internet_exposed", a.internetExposed ? "true" : "false"),
            ("protected", a.protected ? "true" : "false"), ("private_ips", list(a.privateIPs)),
            ("public_ips", list(a.publicIPs)), ("network_interfaces", list(a.networkInterfaces)),
            ("image_id", a.imageID ?? "-"), ("security_groups", list(a.securityGroups)), ("user", a.user ?? "-"),
            ("tags", a.tags.isEmpty ? "-" : a.tags.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")),
            ("first_seen", a.firstSeen.map(Timestamp.formatISO8601) ?? "-"),
            ("last_seen", a.lastSeen.map(Timestamp.formatISO8601) ?? "-"),
        ]
    }

    /// The names of the fields (other than first/last seen) whose values differ.
    static func differingFields(_ old: Asset, _ new: Asset) -> [String] {
        let skip: Set<String> = ["first_seen", "last_seen"]
        return zip(fields(old), fields(new)).filter { !skip.contains($0.0) && $0.1 != $1.1 }.map(\.0.0)
    }
}

/// Left-aligned columns separated by two spaces, for terminal output.
struct TextTable {
    private var rows: [[String]]

    init(_ header: [String]) { rows = [header] }

    mutating func add(_ row: [String]) { rows.append(row) }

    var text: String {
        let columns = rows.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: columns)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        var out = ""
        for row in rows {
            var line = ""
            for (i, cell) in row.enumerated() {
                line += cell
                if i < row.count - 1 { line += String(repeating: " ", count: widths[i] - cell.count + 2) }
            }
            out += line + "\n"
        }
        return out
    }
}
