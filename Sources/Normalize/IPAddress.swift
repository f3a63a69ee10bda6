/// Recognizes address literals and host names without Foundation or inet_pton, so that
/// `sourceIPAddress` lands in `ip` only when it is one (CloudTrail also writes service host names
/// and "AWS Internal" there).
enum IPAddress {
    /// An IPv4 dotted quad or an IPv6 literal (with an optional embedded IPv4 tail).
    static func isLiteral(_ text: String) -> Bool {
        isDottedQuad(text.utf8) || isIPv6(text)
    }

    /// `isIPv4` on bytes, without splitting into `Substring`s: four dot-separated parts of one to
    /// three digits, each at most 255. (A valid quad is ASCII, so bytes and `Character`s agree.)
    static func isDottedQuad(_ bytes: some Sequence<UInt8>) -> Bool {
        var parts = 0
        var digits = 0
        var value = 0
        for byte in bytes {
            if byte == UInt8(ascii: ".") {
                guard digits > 0, value <= 255 else { return false }
                parts += 1
                digits = 0
                value = 0
            } else if isDigit(byte) {
                digits += 1
                guard digits <= 3 else { return false }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            } else {
                return false
            }
        }
        return parts == 3 && digits > 0 && value <= 255
    }

    static func isIPv4(_ text: Substring) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        return parts.allSatisfy { part in
            guard (1...3).contains(part.utf8.count), part.utf8.allSatisfy(isDigit), let value = Int(part) else { return false }
            return value <= 255
        }
    }

    static func isIPv6(_ text: String) -> Bool {
        guard text.utf8.count <= 45, text.contains(":") else { return false }
        let bytes = Array(text.utf8)
        // At most one "::", which stands for one or more zero groups.
        var compression: Int?
        var index = 0
        while index + 1 < bytes.count {
            if bytes[index] == UInt8(ascii: ":"), bytes[index + 1] == UInt8(ascii: ":") {
                guard compression == nil else { return false }
                compression = index
                index += 2
            } else {
                index += 1
            }
        }
        let head: Substring
        let tail: Substring
        if let compression {
            head = Substring(String(decoding: bytes[..<compression], as: UTF8.self))
            tail = Substring(String(decoding: bytes[(compression + 2)...], as: UTF8.self))
        } else {
            head = Substring(text)
            tail = ""
        }
        guard let headGroups = groups(head, mayEndWithIPv4: compression == nil),
              let tailGroups = groups(tail, mayEndWithIPv4: true) else { return false }
        let total = headGroups + tailGroups
        return compression == nil ? total == 8 : total <= 7
    }

    /// How many 16-bit groups a colon-separated run holds (an IPv4 tail counts two), or `nil`.
    private static func groups(_ run: Substring, mayEndWithIPv4: Bool) -> Int? {
        guard !run.isEmpty else { return 0 }
        let parts = run.split(separator: ":", omittingEmptySubsequences: false)
        var count = 0
        for (position, part) in parts.enumerated() {
            if position == parts.count - 1, mayEndWithIPv4, part.contains(".") {
                guard isIPv4(part) else { return nil }
                count += 2
            } else {
                guard (1...4).contains(part.utf8.count), part.utf8.allSatisfy(isHexDigit) else { return nil }
                count += 1
            }
        }
        return count
    }

    /// A DNS name of at least two labels (`ec2.amazonaws.com`); "AWS Internal", "..." and "256.1.1.1" are not.
    static func isHostName(_ text: String) -> Bool {
        guard text.utf8.count <= 253 else { return false }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        // A numeric last label is a malformed address ("256.1.1.1"), not a name: TLDs have letters.
        guard labels.count >= 2, labels.last?.utf8.contains(where: isLetter) == true else { return false }
        return labels.allSatisfy { label in
            (1...63).contains(label.utf8.count)
                && label.utf8.allSatisfy { isDigit($0) || isLetter($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }
        }
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
    private static func isLetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }
    private static func isHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
    }
}
