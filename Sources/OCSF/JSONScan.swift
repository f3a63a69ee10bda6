#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The object members a scan looks for: a tree of member names. Node `i` is the member
/// `names[i]` of the object at node `parents[i]` (-1: the document itself).
///
/// Immutable once built; shared by reference.
public final class JSONScanPlan: Sendable {
    // Flat tables (no nested arrays, which would be retained and released on every access in
    // the scan's inner loop).
    /// Every node's name, UTF-8, one after the other: node `i`'s is `names[nameStart[i]..<nameStart[i + 1]]`.
    private let names: [UInt8]
    private let nameStart: [Int]
    /// The children of each node: those of the document at `children[childStart[0]..<childStart[1]]`,
    /// those of node `i` at `children[childStart[i + 1]..<childStart[i + 2]]`.
    private let children: [Int]
    private let childStart: [Int]
    /// The same children by the length of their names (lengths above 31 share the last list), so
    /// a member name is compared only with the names of its length: those of node `i` (-1: the
    /// document) with length bucket `b` are `byLength[byLengthStart[(i + 1) * 32 + b]..<byLengthStart[(i + 1) * 32 + b + 1]]`.
    private let byLength: [Int]
    private let byLengthStart: [Int]
    /// Every node below each node, for a member that occurs twice in one object: those of node
    /// `i` at `descendants[descendantStart[i]..<descendantStart[i + 1]]`.
    private let descendants: [Int]
    private let descendantStart: [Int]

    /// Number of nodes.
    public let count: Int

    /// A plan of `names.count` nodes; a node's parent must come before it (-1: the document).
    public init(parents: [Int], names: [String]) {
        precondition(parents.count == names.count, "one parent per name")
        count = names.count
        let nameBytes = names.map { Array($0.utf8) }
        var childLists = Array(repeating: [Int](), count: count + 1)
        var descendantLists = Array(repeating: [Int](), count: count)
        for (node, parent) in parents.enumerated() {
            precondition(parent >= -1 && parent < node, "a node's parent comes before it")
            childLists[parent + 1].append(node)
            var ancestor = parent
            while ancestor >= 0 {
                descendantLists[ancestor].append(node)
                ancestor = parents[ancestor]
            }
        }
        func flatten(_ lists: [[Int]]) -> (items: [Int], starts: [Int]) {
            var starts = [0]
            for list in lists { starts.append(starts.last! + list.count) }
            return (lists.flatMap { $0 }, starts)
        }
        self.names = nameBytes.flatMap { $0 }
        var nameStart = [0]
        for name in nameBytes { nameStart.append(nameStart.last! + name.count) }
        self.nameStart = nameStart
        (self.children, self.childStart) = flatten(childLists)
        (self.descendants, self.descendantStart) = flatten(descendantLists)
        (self.byLength, self.byLengthStart) = flatten(childLists.flatMap { nodes in
            (0..<32).map { bucket in nodes.filter { min(nameBytes[$0].count, 31) == bucket } }
        })
    }

    /// Whether the plan looks for members inside `node`'s value.
    fileprivate func hasChildren(_ node: Int) -> Bool { childStart[node + 2] > childStart[node + 1] }

    /// Calls `body` with each child of `node` (-1: the document).
    fileprivate func forEachChild(of node: Int, _ body: (Int) -> Void) {
        for position in childStart[node + 1]..<childStart[node + 2] { body(children[position]) }
    }

    /// Calls `body` with each node below `node`.
    fileprivate func forEachDescendant(of node: Int, _ body: (Int) -> Void) {
        for position in descendantStart[node]..<descendantStart[node + 1] { body(descendants[position]) }
    }

    /// The child of `node` named by `key`, if the plan has one.
    fileprivate func child(of node: Int, named key: UnsafeBufferPointer<UInt8>) -> Int? {
        let bucket = (node + 1) * 32 + min(key.count, 31)
        for position in byLengthStart[bucket]..<byLengthStart[bucket + 1] {
            let child = byLength[position]
            let start = nameStart[child]
            guard nameStart[child + 1] - start == key.count else { continue }
            let equal = names.withUnsafeBufferPointer { names in
                key.isEmpty || memcmp(names.baseAddress! + start, key.baseAddress!, key.count) == 0
            }
            if equal { return child }
        }
        return nil
    }
}

/// Where the members of a ``JSONScanPlan`` are in one JSON document, found without building
/// any of its values. ``JSON/scan(_:plan:)`` checks the whole document as `JSON.parse`
/// checks it; the values are parsed only when asked for (``value(at:)``).
public struct JSONScanResult: Sendable {
    /// The document's bytes.
    public let bytes: [UInt8]
    /// Per node of the plan: the byte offset where its value starts (> 0); -1 when the object
    /// that would hold it was read and lacks it; 0 when the scan did not reach the object (the
    /// parent's value is not an object, or the parent itself is absent or unreached).
    public let offsets: [Int32]

    /// The value starting at `offset` (an offset the scan recorded), parsed.
    public func value(at offset: Int32) -> JSON { Self.value(in: bytes, at: offset) }

    /// The value starting at `offset` of a document a scan read (`offset` one it recorded).
    public static func value(in bytes: [UInt8], at offset: Int32) -> JSON {
        bytes.withUnsafeBufferPointer { buffer in
            var parser = JSONByteParser(bytes: buffer)
            parser.index = Int(offset)
            // The scan checked these bytes exactly as the parser does: this cannot fail.
            return (try? parser.parseValue()) ?? .null
        }
    }

    /// The whole document, parsed (it is an object: the scan read it).
    public func document() -> JSON { Self.document(bytes) }

    /// The whole of a document a scan read, parsed.
    public static func document(_ bytes: [UInt8]) -> JSON {
        (try? JSON.parse(bytes)) ?? .object([:])
    }
}

extension JSON {
    /// Checks `bytes` as `JSON.parse` would and records where the members of `plan` are,
    /// without building any value: the select step reads a handful of fields of each event and
    /// needs the rest only when a rule matches.
    ///
    /// - Returns: `nil` when the document is valid JSON but not an object.
    /// - Throws: exactly the error `parse` throws for the same bytes.
    public static func scan(_ bytes: [UInt8], plan: JSONScanPlan) throws(JSONParseError) -> JSONScanResult? {
        var offsets = [Int32](repeating: 0, count: plan.count)
        let outcome: Bool? = bytes.withUnsafeBufferPointer { buffer in
            var scanner = JSONByteParser(bytes: buffer)
            scanner.skipWhitespace()
            guard scanner.index < buffer.count, buffer[scanner.index] == UInt8(ascii: "{"), buffer.count < Int32.max else {
                return false
            }
            do {
                try offsets.withUnsafeMutableBufferPointer { offsets throws(JSONParseError) in
                    try scanner.scanObject(node: -1, plan: plan, offsets: offsets)
                }
                scanner.skipWhitespace()
                return scanner.index == buffer.count ? true : nil
            } catch {
                return nil
            }
        }
        switch outcome {
        case true?:
            return JSONScanResult(bytes: bytes, offsets: offsets)
        case false?:
            // Not an object (or too large to record offsets for): the parser decides.
            let value = try parse(bytes)
            guard case .object = value else { return nil }
            return JSONScanResult(bytes: bytes, offsets: offsets)
        case nil:
            // Invalid: the parser says why, with its own offset.
            _ = try parse(bytes)
            // The scanner is never stricter than the parser; should it be, the parser wins.
            return JSONScanResult(bytes: bytes, offsets: [Int32](repeating: 0, count: plan.count))
        }
    }
}

extension JSONByteParser {
    /// Reads the object at `index` (node `node`'s value), recording the offsets of the plan's
    /// members and skipping (but checking) everything else.
    mutating func scanObject(node: Int, plan: JSONScanPlan, offsets: UnsafeMutableBufferPointer<Int32>) throws(JSONParseError) {
        try enter()
        defer { depth -= 1 }
        index += 1
        if !closesAtOnce(UInt8(ascii: "}")) {
            repeat {
                try expectMemberName()
                let member = try scanKey(node: node, plan: plan)
                try expectNameSeparator()
                if let member {
                    // A repeated key: its last value counts, as in `parse`, so forget what the
                    // earlier one held.
                    if offsets[member] != 0 {
                        plan.forEachDescendant(of: member) { offsets[$0] = 0 }
                    }
                    offsets[member] = Int32(index)
                    if index < bytes.count, bytes[index] == UInt8(ascii: "{"), plan.hasChildren(member) {
                        try scanObject(node: member, plan: plan, offsets: offsets)
                    } else {
                        try skipValue()
                    }
                } else {
                    try skipValue()
                }
            } while try !itemEnds(UInt8(ascii: "}"))
        }
        // This object was read whole: the members it lacks are absent.
        plan.forEachChild(of: node) { child in
            if offsets[child] == 0 { offsets[child] = -1 }
        }
    }

    /// Reads a member name and returns the plan's node it names under `node`, if any.
    private mutating func scanKey(node: Int, plan: JSONScanPlan) throws(JSONParseError) -> Int? {
        let start = index + 1
        if try skipString() {
            return plan.child(of: node, named: UnsafeBufferPointer(rebasing: bytes[start..<(index - 1)]))
        }
        // Escaped: compare the name it spells.
        index = start - 1
        var name = try parseString()
        return name.withUTF8 { plan.child(of: node, named: $0) }
    }

    /// Skips one value, checking it as `parseValue` would.
    mutating func skipValue() throws(JSONParseError) {
        guard index < bytes.count else { throw error(.unexpectedEnd) }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            try enter()
            defer { depth -= 1 }
            index += 1
            if closesAtOnce(UInt8(ascii: "}")) { return }
            repeat {
                try expectMemberName()
                try skipAnyString()
                try expectNameSeparator()
                try skipValue()
            } while try !itemEnds(UInt8(ascii: "}"))
        case UInt8(ascii: "["):
            try enter()
            defer { depth -= 1 }
            index += 1
            if closesAtOnce(UInt8(ascii: "]")) { return }
            repeat {
                skipWhitespace()
                try skipValue()
            } while try !itemEnds(UInt8(ascii: "]"))
        case UInt8(ascii: "\""): try skipAnyString()
        case UInt8(ascii: "t"): try expectLiteral("true")
        case UInt8(ascii: "f"): try expectLiteral("false")
        case UInt8(ascii: "n"): try expectLiteral("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): _ = try parseNumber()
        default: throw error(.unexpectedCharacter)
        }
    }

    /// Skips the string at `index`, checking it as `parseString` would; one with an escape is
    /// read by `parseString` itself.
    private mutating func skipAnyString() throws(JSONParseError) {
        let quote = index
        if try !skipString() {
            index = quote
            _ = try parseString()
        }
    }

    /// Skips a string without escapes, checking it as `parseString` would, and returns true;
    /// returns false, at the backslash, when it has an escape (`parseString` then reads it).
    private mutating func skipString() throws(JSONParseError) -> Bool {
        index += 1  // opening quote
        let start = index
        var high: UInt8 = 0
        guard try skipToQuoteOrEscape(high: &high) else {
            index = start
            return false
        }
        if high >= 0x80, String(validating: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self) == nil {
            throw JSONParseError(reason: .invalidUTF8, offset: start)
        }
        index += 1
        return true
    }
}

extension JSONByteParser {
    /// Moves `index` over the bytes of a string that need no attention, eight at a time, to
    /// the first quote, backslash or control character (or to within eight bytes of the end).
    /// Returns the bitwise or of the bytes passed over (a set top bit: UTF-8 to check).
    @inline(__always)
    mutating func skipPlainStringBytes() -> UInt8 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let tops: UInt64 = 0x8080_8080_8080_8080
        var high: UInt64 = 0
        guard let base = bytes.baseAddress else { return 0 }
        let raw = UnsafeRawPointer(base)
        while index + 8 <= bytes.count {
            let word = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            // A byte of `x` is zero exactly where the word holds the byte sought. The usual
            // zero-byte test marks the lowest such byte exactly (a borrow can only mark bytes
            // above a true one, never below), which is all that is used here.
            let quote = word ^ (ones &* 0x22)
            let backslash = word ^ (ones &* 0x5C)
            let found = ((quote &- ones) & ~quote | (backslash &- ones) & ~backslash
                // A byte below 0x20 (`~word` clears the bytes of 0x80 and above).
                | (word &- ones &* 0x20) & ~word) & tops
            if found != 0 {
                let before = found.trailingZeroBitCount / 8
                high |= word & ((1 << (UInt64(before) * 8)) &- 1)
                index += before
                break
            }
            high |= word
            index += 8
        }
        return (high & tops) != 0 ? 0x80 : 0
    }
}
