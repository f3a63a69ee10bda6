import OCSF

/// The binary layout of aggregate snapshots (``PartitionAggregator/snapshot()``): integers as
/// zigzag varints, doubles as their 8 bytes (little-endian), strings as a length and their UTF-8
/// bytes, JSON values as their serialized text, optionals as a 0/1 byte before the value,
/// collections as a count before their elements. Each state type writes its stored properties
/// in a fixed order (the `SnapshotCodable` extensions beside the types).
protocol SnapshotCodable {
    func write(to writer: inout SnapshotWriter)
    init(reading reader: inout SnapshotReader) throws
}

struct SnapshotWriter {
    private(set) var bytes: [UInt8] = []

    mutating func int(_ value: Int64) {
        var rest = UInt64(bitPattern: (value << 1) ^ (value >> 63))
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    mutating func int(_ value: Int) { int(Int64(value)) }

    mutating func double(_ value: Double) {
        let bits = value.bitPattern
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
    }

    mutating func string(_ value: String) {
        let utf8 = value.utf8
        int(utf8.count)
        bytes.append(contentsOf: utf8)
    }

    mutating func json(_ value: JSON) {
        let text = value.serialized()
        int(text.count)
        bytes.append(contentsOf: text)
    }

    mutating func raw(_ raw: [UInt8]) { bytes.append(contentsOf: raw) }

    mutating func value(_ value: some SnapshotCodable) { value.write(to: &self) }

    mutating func optional<T>(_ value: T?, _ write: (inout SnapshotWriter, T) -> Void) {
        guard let value else { return bytes.append(0) }
        bytes.append(1)
        write(&self, value)
    }

    mutating func array<C: Collection>(_ values: C, _ write: (inout SnapshotWriter, C.Element) -> Void) {
        int(values.count)
        for value in values { write(&self, value) }
    }

    mutating func array(_ values: some Collection<some SnapshotCodable>) { array(values) { $0.value($1) } }

    mutating func dictionary<Key, Value>(_ values: [Key: Value], key: (inout SnapshotWriter, Key) -> Void,
                                         value: (inout SnapshotWriter, Value) -> Void) {
        array(values) { writer, entry in
            key(&writer, entry.key)
            value(&writer, entry.value)
        }
    }
    mutating func strings(_ values: some Collection<String>) { array(values) { $0.string($1) } }
}

struct SnapshotReader {
    private let bytes: [UInt8]
    private var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { position == bytes.count }

    private func failure(_ what: String) -> SnapshotError {
        SnapshotError(position >= bytes.count ? "aggregate snapshot truncated (\(what) at byte \(position))"
                                              : "aggregate snapshot invalid (\(what) at byte \(position))")
    }

    mutating func byte(_ what: String = "byte") throws -> UInt8 {
        guard position < bytes.count else { throw failure(what) }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func raw(count: Int) throws -> [UInt8] {
        guard bytes.count - position >= count else { throw failure("\(count) bytes") }
        defer { position += count }
        return Array(bytes[position..<(position + count)])
    }

    mutating func int64() throws -> Int64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try byte("integer")
            guard shift < 64 else { throw failure("integer too long") }
            result |= UInt64(byte & 0x7f) << shift
            if byte < 0x80 { break }
            shift += 7
        }
        return Int64(bitPattern: (result >> 1) ^ (0 &- (result & 1)))
    }

    mutating func int() throws -> Int { Int(try int64()) }

    /// A count of elements that each take at least one byte: never more than the bytes left,
    /// so a corrupt count cannot make a reader reserve gigabytes.
    mutating func count() throws -> Int {
        let count = try int()
        guard count >= 0, count <= bytes.count - position else { throw failure("count \(count)") }
        return count
    }

    mutating func double() throws -> Double {
        guard bytes.count - position >= 8 else { throw failure("number") }
        var bits: UInt64 = 0
        for index in 0..<8 { bits |= UInt64(bytes[position + index]) << UInt64(8 * index) }
        position += 8
        return Double(bitPattern: bits)
    }

    mutating func string() throws -> String {
        let length = try count()
        defer { position += length }
        return String(decoding: bytes[position..<(position + length)], as: UTF8.self)
    }

    mutating func json() throws -> JSON {
        let length = try count()
        defer { position += length }
        do { return try JSON.parse(bytes[position..<(position + length)]) } catch { throw failure("JSON: \(error)") }
    }

    mutating func value<T: SnapshotCodable>(_: T.Type = T.self) throws -> T { try T(reading: &self) }

    mutating func optional<T>(_ read: (inout SnapshotReader) throws -> T) throws -> T? {
        switch try byte("optional") {
        case 0: return nil
        case 1: return try read(&self)
        default: throw failure("optional flag")
        }
    }

    mutating func array<T>(_ read: (inout SnapshotReader) throws -> T) throws -> [T] {
        let count = try count()
        var out: [T] = []
        out.reserveCapacity(count)
        for _ in 0..<count { out.append(try read(&self)) }
        return out
    }

    mutating func array<T: SnapshotCodable>(of _: T.Type = T.self) throws -> [T] { try array { try $0.value(T.self) } }

    mutating func dictionary<Key: Hashable, Value>(key: (inout SnapshotReader) throws -> Key,
                                                   value: (inout SnapshotReader) throws -> Value) throws -> [Key: Value] {
        Dictionary(try array { (try key(&$0), try value(&$0)) }, uniquingKeysWith: { _, last in last })
    }
    mutating func strings() throws -> [String] { try array { try $0.string() } }
}

extension AggregateValue: SnapshotCodable {
    func write(to writer: inout SnapshotWriter) {
        switch self {
        case .text(let text):
            writer.int(0)
            writer.string(text)
        case .number(let number):
            writer.int(1)
            writer.double(number)
        }
    }

    init(reading reader: inout SnapshotReader) throws {
        switch try reader.int() {
        case 0: self = .text(try reader.string())
        case 1: self = .number(try reader.double())
        case let tag: throw SnapshotError("aggregate snapshot invalid (value kind \(tag))")
        }
    }
}

extension WindowSpec.Aggregate: SnapshotCodable {
    func write(to writer: inout SnapshotWriter) {
        writer.string(name)
        writer.string(field ?? "")
    }

    init(reading reader: inout SnapshotReader) throws {
        let name = try reader.string()
        let field = try reader.string()
        if name == "count" {
            self = .count
        } else if let aggregate = WindowSpec.Aggregate(name: name, field: field) {
            self = aggregate
        } else {
            throw SnapshotError("aggregate snapshot invalid (aggregate \(name))")
        }
    }
}
