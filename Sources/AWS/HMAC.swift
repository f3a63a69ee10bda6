import OCSF

/// HMAC-SHA256 (RFC 2104) over the module-wide `OCSF.SHA256`, for SigV4 key derivation and
/// signatures.
public enum HMACSHA256 {
    /// SHA-256's block size in bytes.
    static let blockSize = 64

    /// The 32-byte MAC of `message` under `key`.
    public static func authenticate(message: some Sequence<UInt8>, key: some Sequence<UInt8>) -> [UInt8] {
        var keyBytes = Array(key)
        if keyBytes.count > blockSize { keyBytes = SHA256.hash(data: keyBytes) }
        keyBytes += [UInt8](repeating: 0, count: blockSize - keyBytes.count)
        var inner = SHA256()
        inner.update(data: keyBytes.map { $0 ^ 0x36 })
        inner.update(data: message)
        let innerDigest = inner.finalize()
        var outer = SHA256()
        outer.update(data: keyBytes.map { $0 ^ 0x5c })
        outer.update(data: innerDigest)
        return outer.finalize()
    }

    /// The MAC of a UTF-8 string message.
    public static func authenticate(_ message: String, key: some Sequence<UInt8>) -> [UInt8] {
        authenticate(message: Array(message.utf8), key: key)
    }
}

/// Lowercase hexadecimal, as SigV4 writes hashes and signatures.
public func hexString(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}
