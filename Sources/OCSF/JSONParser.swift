/// Why a byte sequence is not acceptable JSON. The description names the position and the
/// problem, never the payload itself (payloads may hold secrets).
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public enum Reason: String, Sendable {
        case unexpectedEnd = "unexpected end of input"
        case unexpectedCharacter = "unexpected character"
        case invalidNumber = "invalid number"
        case invalidEscape = "invalid escape sequence"
        case invalidUTF8 = "invalid UTF-8"
        case tooDeep = "nesting deeper than the limit"
        case trailingData = "data after the JSON value"
        case controlCharacterInString = "unescaped control character in string"
    }

    /// What went wrong.
    public let reason: Reason
    /// Byte offset where parsing stopped.
    public let offset: Int

    public var description: String { "invalid JSON: \(reason.rawValue) at byte \(offset)" }
}

extension JSON {
    /// The deepest nesting accepted. Hostile input must not exhaust the stack.
    public static let maximumDepth = 256

    /// Parses one JSON value from UTF-8 bytes (surrounding whitespace allowed).
    public static func parse(_ bytes: some Collection<UInt8>) throws(JSONParseError) -> JSON {
        let parsed: Result<JSON, JSONParseError>? = bytes.withContiguousStorageIfAvailable { parse(buffer: $0) }
        if let parsed { return try parsed.get() }
        return try Array(bytes).withUnsafeBufferPointer { parse(buffer: $0) }.get()
    }

    /// Parses one JSON value from a string.
    public static func parse(_ text: String) throws(JSONParseError) -> JSON {
        var text = text
        return try text.withUTF8 { parse(buffer: $0) }.get()
    }

    /// Parses one JSON value from memory the caller owns (surrounding whitespace allowed).
    public static func parse(buffer: UnsafeBufferPointer<UInt8>) -> Result<JSON, JSONParseError> {
        var parser = JSONByteParser(bytes: buffer)
        do { return .success(try parser.parseDocument()) } catch { return .failure(error) }
    }
}

/// A top-level object read by `JSON.parseObject(buffer:streamingArrayAt:element:)`.
public struct JSONStreamedObject: Sendable {
    /// The members, except the streamed array; a non-array value under the streamed key is an
    /// ordinary member here.
    public var members: [String: JSON]
    /// How many elements the streamed array had, when the key's value (its last occurrence, as
    /// in `parse`) was an array; `nil` when it was absent or not an array.
    public var streamedCount: Int?
}

extension JSON {
    /// Parses a document whose top-level value is an object, handing each element of the array
    /// under `key` to `element` as soon as it is parsed instead of collecting the array, so a
    /// large log file (`{"Records":[...]}`) never exists as one tree. `element` gets the
    /// element's index; a repeated key starts its array over at index 0 (the last occurrence
    /// counts, as in `parse`). The document is checked exactly as `parse` checks it: the same
    /// bytes fail with the same error at the same offset, so a caller discards what it was
    /// handed when this fails. `nil` when the top-level value is not an object.
    public static func parseObject(
        buffer: UnsafeBufferPointer<UInt8>, streamingArrayAt key: String, element: (Int, JSON) -> Void
    ) -> Result<JSONStreamedObject, JSONParseError>? {
        var parser = JSONByteParser(bytes: buffer)
        parser.skipWhitespace()
        guard parser.index < buffer.count, buffer[parser.index] == UInt8(ascii: "{") else { return nil }
        do {
            return .success(try parser.parseObjectDocument(streaming: key, element: element))
        } catch {
            return .failure(error)
        }
    }
}

/// A recursive-descent parser over bytes in memory, with a depth limit.
///
/// Object members are gathered on one stack shared by every nesting level and become a
/// dictionary of the right capacity at the closing brace, so no dictionary grows (and
/// rehashes) while it is filled. Error offsets are byte offsets into `bytes`.
struct JSONByteParser {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0
    var depth = 0
    /// Members of the objects being parsed, innermost last.
    private var members: [(key: String, value: JSON)] = []

    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    mutating func parseDocument() throws(JSONParseError) -> JSON {
        skipWhitespace()
        let value = try parseValue()
        skipWhitespace()
        guard index == bytes.count else { throw JSONParseError(reason: .trailingData, offset: index) }
        return value
    }

    /// Parses values separated by whitespace or newlines (JSON lines, concatenated JSON).
    mutating func parseSequence() throws(JSONParseError) -> [JSON] {
        var values: [JSON] = []
        skipWhitespace()
        while index < bytes.count {
            values.append(try parseValue())
            skipWhitespace()
        }
        return values
    }

    func error(_ reason: JSONParseError.Reason) -> JSONParseError {
        JSONParseError(reason: reason, offset: index)
    }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    mutating func parseValue() throws(JSONParseError) -> JSON {
        guard index < bytes.count else { throw error(.unexpectedEnd) }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error(.unexpectedCharacter)
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw error(.unexpectedEnd) }
        let start = literal.utf8Start
        for offset in 0..<count where bytes[index + offset] != start[offset] {
            index += offset
            throw error(.unexpectedCharacter)
        }
        index += count
    }

    mutating func enter() throws(JSONParseError) {
        depth += 1
        if depth > JSON.maximumDepth { throw error(.tooDeep) }
    }

    // The punctuation of objects and arrays, shared by the parser, the streaming parser and the
    // scan (JSONScan.swift), so all of them accept the same bytes and fail at the same offsets.

    /// Just past `{` or `[`: skips whitespace; true, with `close` consumed, for an empty container.
    mutating func closesAtOnce(_ close: UInt8) -> Bool {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == close else { return false }
        index += 1
        return true
    }

    /// Where an object member starts: whitespace, then its name's opening quote (not consumed).
    mutating func expectMemberName() throws(JSONParseError) {
        skipWhitespace()
        guard index < bytes.count else { throw error(.unexpectedEnd) }
        guard bytes[index] == UInt8(ascii: "\"") else { throw error(.unexpectedCharacter) }
    }

    /// Between a member's name and its value: whitespace, `:`, whitespace.
    mutating func expectNameSeparator() throws(JSONParseError) {
        skipWhitespace()
        guard index < bytes.count else { throw error(.unexpectedEnd) }
        guard bytes[index] == UInt8(ascii: ":") else { throw error(.unexpectedCharacter) }
        index += 1
        skipWhitespace()
    }

    /// After a member or an element: whitespace, then `,` (false: another follows) or `close`
    /// (true: the container ended), consumed.
    mutating func itemEnds(_ close: UInt8) throws(JSONParseError) -> Bool {
        skipWhitespace()
        guard index < bytes.count else { throw error(.unexpectedEnd) }
        if bytes[index] == UInt8(ascii: ",") {
            index += 1
            return false
        }
        if bytes[index] == close {
            index += 1
            return true
        }
        throw error(.unexpectedCharacter)
    }

    private mutating func parseObject() throws(JSONParseError) -> JSON {
        try enter()
        defer { depth -= 1 }
        index += 1
        if closesAtOnce(UInt8(ascii: "}")) { return .object([:]) }
        let base = members.count
        // On an error the whole parse ends, so the stack need not be unwound here.
        repeat {
            try expectMemberName()
            let key = try parseString()
            try expectNameSeparator()
            let value = try parseValue()
            members.append((key, value))
        } while try !itemEnds(UInt8(ascii: "}"))
        // A repeated key keeps its last value, as assigning in order would.
        var object = [String: JSON](minimumCapacity: members.count - base)
        for position in base..<members.count {
            object[members[position].key] = members[position].value
        }
        members.removeSubrange(base...)
        return .object(object)
    }

    /// `parseDocument` for an object whose array under `streamKey` goes to `element` piece by
    /// piece. Mirrors `parseObject` and `parseArray` step for step, so errors and offsets match.
    mutating func parseObjectDocument(
        streaming streamKey: String, element: (Int, JSON) -> Void
    ) throws(JSONParseError) -> JSONStreamedObject {
        var object = JSONStreamedObject(members: [:], streamedCount: nil)
        try enter()
        index += 1
        if !closesAtOnce(UInt8(ascii: "}")) {
            repeat {
                try expectMemberName()
                let key = try parseString()
                try expectNameSeparator()
                if key == streamKey, index < bytes.count, bytes[index] == UInt8(ascii: "[") {
                    object.members[key] = nil
                    object.streamedCount = try streamArray(element)
                } else {
                    let value = try parseValue()
                    if key == streamKey { object.streamedCount = nil }
                    object.members[key] = value
                }
            } while try !itemEnds(UInt8(ascii: "}"))
        }
        depth -= 1
        skipWhitespace()
        guard index == bytes.count else { throw JSONParseError(reason: .trailingData, offset: index) }
        return object
    }

    /// `parseArray`, handing each element over instead of keeping it; returns the count.
    private mutating func streamArray(_ element: (Int, JSON) -> Void) throws(JSONParseError) -> Int {
        try enter()
        defer { depth -= 1 }
        index += 1
        if closesAtOnce(UInt8(ascii: "]")) { return 0 }
        var count = 0
        repeat {
            skipWhitespace()
            element(count, try parseValue())
            count += 1
        } while try !itemEnds(UInt8(ascii: "]"))
        return count
    }

    private mutating func parseArray() throws(JSONParseError) -> JSON {
        try enter()
        defer { depth -= 1 }
        index += 1
        if closesAtOnce(UInt8(ascii: "]")) { return .array([]) }
        var items: [JSON] = []
        repeat {
            skipWhitespace()
            items.append(try parseValue())
        } while try !itemEnds(UInt8(ascii: "]"))
        return .array(items)
    }

    mutating func parseString() throws(JSONParseError) -> String {
        index += 1  // opening quote
        let start = index
        // Fast path: no escapes; ASCII needs no UTF-8 validation.
        var high: UInt8 = 0
        if try skipToQuoteOrEscape(high: &high) {
            let slice = UnsafeBufferPointer(rebasing: bytes[start..<index])
            index += 1
            if high < 0x80 { return String(decoding: slice, as: UTF8.self) }
            guard let text = String(validating: slice, as: UTF8.self) else {
                throw JSONParseError(reason: .invalidUTF8, offset: start)
            }
            return text
        }
        var buffer = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                guard let text = String(validating: buffer, as: UTF8.self) else {
                    throw JSONParseError(reason: .invalidUTF8, offset: start)
                }
                return text
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw error(.unexpectedEnd) }
                let escaped = bytes[index]
                index += 1
                switch escaped {
                case UInt8(ascii: "\""): buffer.append(0x22)
                case UInt8(ascii: "\\"): buffer.append(0x5C)
                case UInt8(ascii: "/"): buffer.append(0x2F)
                case UInt8(ascii: "b"): buffer.append(0x08)
                case UInt8(ascii: "f"): buffer.append(0x0C)
                case UInt8(ascii: "n"): buffer.append(0x0A)
                case UInt8(ascii: "r"): buffer.append(0x0D)
                case UInt8(ascii: "t"): buffer.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try parseHex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        // A high surrogate must be followed by \u and a low surrogate.
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                              bytes[index + 1] == UInt8(ascii: "u") else { throw error(.invalidEscape) }
                        index += 2
                        let low = try parseHex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw error(.invalidEscape) }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw error(.invalidEscape)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw error(.invalidEscape) }
                    UTF8.encode(unicode) { buffer.append($0) }
                default:
                    throw error(.invalidEscape)
                }
            default:
                if byte < 0x20 { throw error(.controlCharacterInString) }
                buffer.append(byte)
                index += 1
            }
        }
        throw error(.unexpectedEnd)
    }

    /// From inside a string: moves `index` to its closing quote (true) or its first backslash
    /// (false), rejecting control characters; `high` gets the bitwise or of the bytes passed.
    mutating func skipToQuoteOrEscape(high: inout UInt8) throws(JSONParseError) -> Bool {
        high = skipPlainStringBytes()
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { return true }
            if byte == UInt8(ascii: "\\") { return false }
            if byte < 0x20 { throw error(.controlCharacterInString) }
            high |= byte
            index += 1
        }
        throw error(.unexpectedEnd)
    }

    private mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error(.unexpectedEnd) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw error(.invalidEscape)
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    private func isDigit(_ position: Int) -> Bool {
        position < bytes.count && bytes[position] >= UInt8(ascii: "0") && bytes[position] <= UInt8(ascii: "9")
    }

    mutating func parseNumber() throws(JSONParseError) -> JSON {
        let start = index
        var isInteger = true
        let negative = bytes[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        guard index < bytes.count else { throw error(.unexpectedEnd) }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if (UInt8(ascii: "1")...UInt8(ascii: "9")).contains(bytes[index]) {
            while isDigit(index) { index += 1 }
        } else {
            throw error(.invalidNumber)
        }
        let integerEnd = index
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            let digitsStart = index
            while isDigit(index) { index += 1 }
            guard index > digitsStart else { throw error(.invalidNumber) }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            isInteger = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            let digitsStart = index
            while isDigit(index) { index += 1 }
            guard index > digitsStart else { throw error(.invalidNumber) }
        }
        let digitsStart = negative ? start + 1 : start
        if isInteger, integerEnd - digitsStart <= 18 {
            // Up to 18 digits cannot overflow: no text, no Int64(String) needed.
            var value: Int64 = 0
            for position in digitsStart..<integerEnd { value = value * 10 + Int64(bytes[position] - UInt8(ascii: "0")) }
            return .int(negative ? -value : value)
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        if isInteger, let integer = Int64(text) { return .int(integer) }
        guard let double = Double(text), double.isFinite else {
            throw JSONParseError(reason: .invalidNumber, offset: start)
        }
        return .double(double)
    }
}
