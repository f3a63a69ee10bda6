import OCSF

/// The field paths a rule set reads, interned into a tree of path components, so the select
/// step looks up each object member of an event at most once however many rules and tests
/// read it (`api.operation` and `api.service.name` share the lookup of `api`).
///
/// Immutable once built; shared by reference between copies of the selector.
final class FieldPaths: Sendable {
    /// Per node: its parent (-1: the event itself) and the component read from the parent.
    private let parents: [Int]
    private let names: [String]
    /// The component as an array index, as `JSON.value(at:)` reads it (`Int(component)`).
    private let indices: [Int?]

    /// Number of nodes: the size of an event's cache.
    var count: Int { parents.count }

    /// The same tree for ``JSON/scan(_:plan:)``, which finds these paths in an event's bytes.
    let plan: JSONScanPlan

    fileprivate init(parents: [Int], names: [String]) {
        self.parents = parents
        self.names = names
        self.indices = names.map { Int($0) }
        self.plan = JSONScanPlan(parents: parents, names: names)
    }

    fileprivate func parent(_ node: Int) -> Int { parents[node] }

    /// The value `parent` holds at `node`'s component: an object member by name, an array
    /// element by number; `nil` otherwise (the semantics of `JSON.value(at:)`).
    fileprivate func child(_ node: Int, of parent: JSON) -> JSON? {
        switch parent {
        case .object(let members):
            return members[names[node]]
        case .array(let items):
            guard let index = indices[node], items.indices.contains(index) else { return nil }
            return items[index]
        default:
            return nil
        }
    }

    /// Builds the tree while rules are compiled.
    struct Builder {
        private var parents: [Int] = []
        private var names: [String] = []
        private var nodes: [PathStep: Int] = [:]

        private struct PathStep: Hashable {
            let parent: Int
            let name: String
        }

        /// The node of `path` (split at every dot, as `JSON.value(at:)` splits it).
        mutating func node(_ path: String) -> Int {
            node(components: path.split(separator: ".", omittingEmptySubsequences: false).map(String.init))
        }

        /// The node of a path already split into components.
        mutating func node(components: [String]) -> Int {
            var current = -1
            for name in components {
                let step = PathStep(parent: current, name: name)
                if let existing = nodes[step] {
                    current = existing
                } else {
                    parents.append(current)
                    names.append(name)
                    nodes[step] = parents.count - 1
                    current = parents.count - 1
                }
            }
            return current
        }

        func build() -> FieldPaths { FieldPaths(parents: parents, names: names) }
    }
}

/// One event and the values of the interned paths found in it so far: each path is resolved
/// on first use, from its parent's cached value, or, for an event read from bytes by
/// ``JSON/scan(_:plan:)``, parsed from where the scan found it. An event read from bytes is
/// parsed whole only if something asks for all of it (``document()``).
struct EventFields {
    private let paths: FieldPaths
    /// The whole event: given, or parsed from `bytes` on first use.
    private var root: JSON?
    /// The scanned event's bytes; `nil` when the event was given parsed.
    private let bytes: [UInt8]?
    /// Per node: 0 not looked up yet (resolved through its parent); -1 absent; o > 0 its value
    /// starts at byte o of `bytes`, not parsed yet; -(k + 2) found as `found[k]`. Plain
    /// integers (for a scanned event, the scan's own table), so the table costs one zeroed
    /// allocation per event whatever the number of paths; only the values found are held as JSON.
    private var slots: [Int32]
    private var found: [JSON] = []

    /// The fields of an event already parsed.
    init(_ event: JSON, paths: FieldPaths) {
        self.paths = paths
        self.root = event
        self.bytes = nil
        self.slots = Array(repeating: 0, count: paths.count)
        found.reserveCapacity(16)
    }

    /// The fields of an event scanned with `paths.plan`.
    init(scanned: consuming JSONScanResult, paths: FieldPaths) {
        self.paths = paths
        self.root = nil
        self.bytes = scanned.bytes
        self.slots = scanned.offsets
        found.reserveCapacity(16)
    }

    /// The whole event.
    mutating func document() -> JSON {
        if let root { return root }
        let parsed = bytes.map(JSONScanResult.document) ?? .object([:])
        root = parsed
        return parsed
    }

    /// The value at the path interned as `node` (-1: the event); `nil` when it is absent,
    /// exactly as `event.value(at: path)` would find it.
    mutating func value(_ node: Int) -> JSON? {
        guard node >= 0 else { return document() }
        let slot = slots[node]
        if slot < -1 { return found[Int(-slot) - 2] }
        if slot == -1 { return nil }
        let value: JSON?
        if slot > 0, let bytes {
            value = JSONScanResult.value(in: bytes, at: slot)
        } else {
            value = self.value(paths.parent(node)).flatMap { paths.child(node, of: $0) }
        }
        guard let value else {
            slots[node] = -1
            return nil
        }
        slots[node] = -Int32(found.count) - 2
        found.append(value)
        return value
    }
}
