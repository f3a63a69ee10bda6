extension JSON {
    /// Compact UTF-8 JSON with object keys sorted, so equal values give identical bytes.
    public func serialized() -> [UInt8] {
        // Room for a typical OCSF event (1 – 2 KB); the result is copied out at its exact size.
        var writer = JSONByteWriter(capacity: 2048)
        write(to: &writer, depth: 0)
        return writer.bytes()
    }

    /// Compact JSON text with sorted keys.
    public var jsonText: String { String(decoding: serialized(), as: UTF8.self) }

    /// Appends the compact, key-sorted encoding of this value to `out`.
    public func write(into out: inout [UInt8]) {
        var writer = JSONByteWriter(capacity: 256)
        write(to: &writer, depth: 0)
        writer.withBytes { out.append(contentsOf: $0) }
    }

    /// The encoding into the serializer's buffer; `depth` counts the enclosing containers.
    func write(to out: inout JSONByteWriter, depth: Int) {
        switch self {
        case .null: JSON.append("null", to: &out)
        case .bool(let b): JSON.append(b ? "true" : "false", to: &out)
        case .int(let i): JSON.writeInteger(i, into: &out)
        case .double(let d): JSON.writeString(unquoted: JSON.format(d), into: &out)
        case .string(let s): JSON.writeString(s, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            var first = true
            for item in items {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                item.write(to: &out, depth: depth + 1)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            JSON.writeMembers(members, into: &out, depth: depth)
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Members in key order. Small objects (OCSF events are made of them) are read once into
    /// stack buffers and ordered by insertion-sorting positions, comparing keys in place: no
    /// copy of the pairs on the heap, no hash lookups, no reference counting while sorting.
    /// Large ones, and any below the first levels (so hostile nesting cannot pile stack buffers
    /// up), sort a copy of the pairs, O(n log n).
    private static func writeMembers(_ members: [String: JSON], into out: inout JSONByteWriter, depth: Int) {
        let count = members.count
        guard count > 0 else { return }
        guard count <= 32, depth < 8 else {
            var first = true
            for member in members.sorted(by: { $0.key < $1.key }) {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                writeString(member.key, into: &out)
                out.append(UInt8(ascii: ":"))
                member.value.write(to: &out, depth: depth + 1)
            }
            return
        }
        withUnsafeTemporaryAllocation(of: String.self, capacity: count) { keys in
            withUnsafeTemporaryAllocation(of: JSON.self, capacity: count) { values in
                withUnsafeTemporaryAllocation(of: Int.self, capacity: count) { order in
                    var filled = 0
                    for (key, value) in members {
                        keys.initializeElement(at: filled, to: key)
                        values.initializeElement(at: filled, to: value)
                        var slot = filled
                        while slot > 0, keys[filled] < keys[order[slot - 1]] {
                            order[slot] = order[slot - 1]
                            slot -= 1
                        }
                        order[slot] = filled
                        filled += 1
                    }
                    for position in 0..<filled {
                        if position > 0 { out.append(UInt8(ascii: ",")) }
                        let member = order[position]
                        writeString(keys[member], into: &out)
                        out.append(UInt8(ascii: ":"))
                        values[member].write(to: &out, depth: depth + 1)
                    }
                    keys.baseAddress!.deinitialize(count: filled)
                    values.baseAddress!.deinitialize(count: filled)
                }
            }
        }
    }

    /// The JSON spelling of a double: integral values without a fraction, non-finite as null.
    static func format(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        if d.rounded() == d, abs(d) < 1e15 { return String(Int64(d)) }
        return String(d)
    }

    private static func append(_ literal: StaticString, to out: inout JSONByteWriter) {
        out.append(UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    /// Decimal digits straight into `out` (no intermediate `String`).
    static func writeInteger(_ value: Int64, into out: inout JSONByteWriter) {
        var magnitude = value.magnitude
        if value < 0 { out.append(UInt8(ascii: "-")) }
        if magnitude < 10 {
            out.append(UInt8(truncatingIfNeeded: magnitude) + 48)
            return
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var start = 20
            while magnitude > 0 {
                start -= 1
                digits[start] = UInt8(truncatingIfNeeded: magnitude % 10) + 48
                magnitude /= 10
            }
            out.append(UnsafeBufferPointer(rebasing: digits[start..<20]))
        }
    }

    private static func writeString(unquoted s: String, into out: inout JSONByteWriter) {
        var s = s
        s.withUTF8 { out.append($0) }
    }

    static func writeString(_ s: String, into out: inout JSONByteWriter) {
        let written: Void? = s.utf8.withContiguousStorageIfAvailable { writeString(utf8: $0, into: &out) }
        if written == nil {
            var copy = s
            copy.withUTF8 { writeString(utf8: $0, into: &out) }
        }
    }

    /// A quoted, escaped string: runs of bytes that need no escape are copied whole.
    static func writeString(utf8 bytes: UnsafeBufferPointer<UInt8>, into out: inout JSONByteWriter) {
        out.append(UInt8(ascii: "\""))
        var runStart = 0
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte >= 0x20, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") {
                index += 1
                continue
            }
            if runStart < index { out.append(UnsafeBufferPointer(rebasing: bytes[runStart..<index])) }
            switch byte {
            case UInt8(ascii: "\""): out.append(0x5C); out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C); out.append(0x5C)
            case 0x0A: out.append(0x5C); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(0x5C); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(0x5C); out.append(UInt8(ascii: "t"))
            default:
                let hex: StaticString = "0123456789abcdef"
                let digits = hex.utf8Start
                out.append(0x5C); out.append(UInt8(ascii: "u")); out.append(0x30); out.append(0x30)
                out.append(digits[Int(byte >> 4)]); out.append(digits[Int(byte & 0xF)])
            }
            index += 1
            runStart = index
        }
        if runStart < bytes.count { out.append(UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count])) }
        out.append(UInt8(ascii: "\""))
    }
}

/// The serializer's output: a buffer it owns, whose appends check capacity inline (an array's
/// appends also check uniqueness, out of line, on every byte). Copied out once at the end.
struct JSONByteWriter: ~Copyable {
    private var base: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private var count = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 16)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    @inline(__always) mutating func append(_ byte: UInt8) {
        if count == capacity { grow(to: count + 1) }
        base[count] = byte
        count += 1
    }

    @inline(__always) mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        if count + bytes.count > capacity { grow(to: count + bytes.count) }
        (base + count).initialize(from: source, count: bytes.count)
        count += bytes.count
    }

    @inline(never) private mutating func grow(to needed: Int) {
        let newCapacity = max(needed, capacity * 2)
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.initialize(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    /// The bytes written so far, while `body` runs.
    func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        body(UnsafeBufferPointer(start: base, count: count))
    }

    /// The bytes written, as an array.
    consuming func bytes() -> [UInt8] {
        Array(UnsafeBufferPointer(start: base, count: count))
    }
}
