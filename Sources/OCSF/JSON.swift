/// A JSON value. OCSF events, alerts and commands are JSON objects; this is their in-memory form.
///
/// Integers are kept apart from doubles so epoch milliseconds and ports survive exactly.
/// Objects are unordered; `serialized()` sorts keys so equal values give byte-identical output,
/// which deterministic ids and replay diffs rely on.
public enum JSON: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])
}

extension JSON {
    /// The member named `key` when this is an object.
    public subscript(key: String) -> JSON? {
        get {
            if case .object(let members) = self { return members[key] }
            return nil
        }
        set {
            guard case .object(var members) = self else { return }
            // Drop self's reference first so `members` is unique and changes in place, not copied.
            self = .null
            members[key] = newValue
            self = .object(members)
        }
    }

    /// The value at a dotted path such as `actor.user.name` or `resources.0.uid`.
    ///
    /// Reads the path's bytes in place (no array of components): rules and enrichment call this
    /// for every field of every event.
    public func value(at path: String) -> JSON? {
        var path = path
        return path.withUTF8 { bytes -> JSON? in
            var current = self
            var start = 0
            while true {
                var end = start
                while end < bytes.count, bytes[end] != UInt8(ascii: ".") { end += 1 }
                let component = UnsafeBufferPointer(rebasing: bytes[start..<end])
                switch current {
                case .object(let members):
                    guard let next = members[String(decoding: component, as: UTF8.self)] else { return nil }
                    current = next
                case .array(let items):
                    guard let index = Int(String(decoding: component, as: UTF8.self)), items.indices.contains(index) else {
                        return nil
                    }
                    current = items[index]
                default:
                    return nil
                }
                guard end < bytes.count else { return current }
                start = end + 1
            }
        }
    }

    /// Sets the value at a dotted path, creating intermediate objects as needed.
    public mutating func set(_ path: String, _ newValue: JSON?) {
        let components = path.split(separator: ".").map(String.init)
        guard !components.isEmpty else { return }
        setPath(components[...], newValue)
    }

    private mutating func setPath(_ components: ArraySlice<String>, _ newValue: JSON?) {
        guard let head = components.first else { return }
        var members: [String: JSON]
        if case .object(let existing) = self { members = existing } else { members = [:] }
        // Release self's reference (and the child's slot) so every level mutates in place.
        self = .null
        if components.count == 1 {
            members[head] = newValue
        } else {
            var child = members.removeValue(forKey: head) ?? .object([:])
            child.setPath(components.dropFirst(), newValue)
            members[head] = child
        }
        self = .object(members)
    }

    /// The string, when this is a string.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The integer, when this is an integer or a double with no fraction.
    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9.2e18: return Int64(d)
        default: return nil
        }
    }

    /// The number as a double, when this is a number.
    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// The members, when this is an object.
    public var objectValue: [String: JSON]? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// The items, when this is an array.
    public var arrayValue: [JSON]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The boolean, when this is a boolean.
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// A plain-text rendering of a scalar, used for matching and keys: strings as they are,
    /// numbers and booleans in their JSON spelling, `nil` for null, arrays and objects.
    public var scalarText: String? {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .double(let d): return JSON.format(d)
        case .bool(let b): return b ? "true" : "false"
        default: return nil
        }
    }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral, ExpressibleByFloatLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSON)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(nilLiteral: ()) { self = .null }
}
