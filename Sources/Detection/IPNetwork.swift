/// An IPv4 or IPv6 address as bytes (4 or 16), parsed without the C library so rule
/// evaluation stays pure and portable.
struct IPAddress: Sendable, Equatable {
    let bytes: [UInt8]

    /// Parses dotted IPv4 or RFC 4291 IPv6 text (`::1`, `fe80::1%eth0`, `::ffff:10.0.0.1`).
    init?(_ text: String) {
        var text = Substring(text)
        if let zone = text.firstIndex(of: "%") { text = text[..<zone] }
        if let v4 = IPAddress.parseV4(text) {
            bytes = v4
        } else if let v6 = IPAddress.parseV6(text) {
            bytes = v6
        } else {
            return nil
        }
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    /// The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`).
    var mappedV4: IPAddress? {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF else {
            return nil
        }
        return IPAddress(bytes: Array(bytes[12...]))
    }

    static func parseV4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for part in parts {
            // No leading zeros: "010" is octal to some parsers and decimal to others.
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  part == "0" || part.first != "0", let value = UInt8(part)
            else { return nil }
            out.append(value)
        }
        return out
    }

    /// Dotted IPv4 text (no zone) as a 32-bit number, read in place without allocating: the
    /// address `init` makes of exactly the texts `parseV4` accepts. `nil` for any other text,
    /// which the caller then hands to `init` (IPv6, zones, invalid text).
    static func v4Number(_ text: String) -> UInt32? {
        text.utf8.withContiguousStorageIfAvailable { bytes -> UInt32? in
            var number: UInt32 = 0
            var part: UInt32 = 0
            var digits = 0
            var parts = 0
            var leadingZero = false
            for byte in bytes {
                if byte == UInt8(ascii: ".") {
                    guard digits > 0, parts < 3 else { return nil }
                    number = number << 8 | part
                    parts += 1
                    part = 0
                    digits = 0
                    leadingZero = false
                    continue
                }
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 3, !leadingZero else { return nil }
                // No leading zeros, as in `parseV4`: only "0" itself may start with 0.
                leadingZero = digits == 0 && byte == UInt8(ascii: "0")
                part = part * 10 + UInt32(byte - UInt8(ascii: "0"))
                digits += 1
                guard part <= 255 else { return nil }
            }
            guard digits > 0, parts == 3 else { return nil }
            return number << 8 | part
        } ?? nil
    }

    static func parseV6(_ text: Substring) -> [UInt8]? {
        guard text.contains(":") else { return nil }
        func groups(_ part: Substring, allowV4Tail: Bool) -> [UInt8]? {
            if part.isEmpty { return [] }
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            var out: [UInt8] = []
            for (index, piece) in pieces.enumerated() {
                if allowV4Tail, index == pieces.count - 1, piece.contains(".") {
                    guard let v4 = parseV4(piece) else { return nil }
                    out.append(contentsOf: v4)
                    continue
                }
                guard (1...4).contains(piece.count), let value = UInt16(piece, radix: 16) else { return nil }
                out.append(UInt8(value >> 8))
                out.append(UInt8(value & 0xFF))
            }
            return out
        }
        let halves = text.split(separator: "::", maxSplits: 1, omittingEmptySubsequences: false)
        if halves.count == 2 {
            guard !halves[1].contains("::"),
                  let head = groups(halves[0], allowV4Tail: false),
                  let tail = groups(halves[1], allowV4Tail: true),
                  head.count + tail.count <= 14
            else { return nil }
            return head + Array(repeating: 0, count: 16 - head.count - tail.count) + tail
        }
        guard let all = groups(text, allowV4Tail: true), all.count == 16 else { return nil }
        return all
    }
}

/// An address block written in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`); a bare address
/// is a single-host block.
struct IPNetwork: Sendable, Equatable {
    /// Why a CIDR text was refused; the wording appears in rule errors.
    enum Problem: String, Error {
        case notAnAddress = "not an IP address"
        case badPrefixLength = "prefix length out of range"
        case hostBitsSet = "address has bits set beyond the prefix length"
    }

    let base: IPAddress
    let prefixLength: Int
    /// For an IPv4 block, its base and mask as 32-bit numbers, so an IPv4 address is tested
    /// without being turned into bytes (see ``contains(v4:)``).
    private let v4Base: UInt32?
    private let v4Mask: UInt32

    init(base: IPAddress, prefixLength: Int) {
        self.base = base
        self.prefixLength = prefixLength
        if base.bytes.count == 4 {
            v4Base = base.bytes.reduce(0) { $0 << 8 | UInt32($1) }
            v4Mask = prefixLength == 0 ? 0 : UInt32.max << UInt32(32 - prefixLength)
        } else {
            v4Base = nil
            v4Mask = 0
        }
    }

    static func parse(_ text: String) -> Result<IPNetwork, Problem> {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard !parts[0].contains("%"), let address = IPAddress(String(parts[0])) else { return .failure(.notAnAddress) }
        let maximum = address.bytes.count * 8
        var length = maximum
        if parts.count == 2 {
            guard parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let parsed = Int(parts[1]), parsed <= maximum else {
                return .failure(.badPrefixLength)
            }
            length = parsed
        }
        let network = IPNetwork(base: address, prefixLength: length)
        guard IPNetwork.masked(address.bytes, length) == address.bytes else {
            return .failure(.hostBitsSet)
        }
        return .success(network)
    }

    func contains(_ address: IPAddress) -> Bool {
        var candidate = address
        if candidate.bytes.count != base.bytes.count {
            // An IPv4-mapped IPv6 address matches IPv4 blocks; nothing else crosses families.
            guard base.bytes.count == 4, let v4 = candidate.mappedV4 else { return false }
            candidate = v4
        }
        return IPNetwork.masked(candidate.bytes, prefixLength) == base.bytes
    }

    /// Whether the IPv4 address `number` (see ``IPAddress/v4Number(_:)``) is inside the block:
    /// the same answer as ``contains(_:)`` gives for it. IPv6 blocks hold no IPv4 address.
    func contains(v4 number: UInt32) -> Bool {
        guard let v4Base else { return false }
        return number & v4Mask == v4Base
    }

    static func masked(_ bytes: [UInt8], _ length: Int) -> [UInt8] {
        var out = bytes
        for index in out.indices {
            let bitsHere = max(0, min(8, length - index * 8))
            out[index] &= bitsHere == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bitsHere))
        }
        return out
    }
}
