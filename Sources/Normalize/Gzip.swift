import CZlib

/// Why a compressed record could not be inflated. No payload bytes are quoted.
public struct GzipError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `truncated`, `corrupt`, `too_large` or `nested`.
    public let code: String
    /// Human reason.
    public let reason: String

    /// An error with a code and reason.
    public init(code: String, reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "gzip \(code): \(reason)" }
}

/// gzip (RFC 1952) through the system zlib. Log deliveries (CloudTrail, VPC flow logs, S3
/// objects) are gzip files; a raw record that starts with the gzip magic is inflated before
/// parsing, with a cap on the inflated size so a small hostile record cannot exhaust memory.
public enum Gzip {
    /// The default cap on inflated bytes: 256 MiB.
    public static let defaultLimit = 256 << 20

    /// Whether `bytes` start with the gzip magic number.
    public static func isCompressed(_ bytes: some Collection<UInt8>) -> Bool {
        var iterator = bytes.makeIterator()
        return iterator.next() == 0x1F && iterator.next() == 0x8B
    }

    /// Inflates every gzip member in `bytes` (concatenated members, as `cat a.gz b.gz` makes,
    /// are joined). Throws when the data is cut short, corrupt, or inflates past `limit`.
    public static func decompress(_ bytes: [UInt8], limit: Int = Gzip.defaultLimit) throws(GzipError) -> [UInt8] {
        var stream = z_stream()
        // 15 + 16: a gzip wrapper is required (raw zlib streams are not log files).
        guard inflateInit2_(&stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw GzipError(code: "corrupt", reason: "cannot initialise zlib")
        }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        output.reserveCapacity(min(limit, max(bytes.count * 4, 4096)))
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var input = bytes
        let total = input.count
        var consumed = 0
        while true {
            let status: Int32 = input.withUnsafeMutableBufferPointer { inputBuffer in
                chunk.withUnsafeMutableBufferPointer { chunkBuffer in
                    stream.next_in = inputBuffer.baseAddress.map { $0 + consumed }
                    stream.avail_in = UInt32(total - consumed)
                    stream.next_out = chunkBuffer.baseAddress
                    stream.avail_out = UInt32(chunkBuffer.count)
                    let result = inflate(&stream, Z_NO_FLUSH)
                    consumed = total - Int(stream.avail_in)
                    return result
                }
            }
            let produced = chunk.count - Int(stream.avail_out)
            if output.count + produced > limit {
                throw GzipError(code: "too_large", reason: "inflates to more than \(limit) bytes")
            }
            output.append(contentsOf: chunk[0..<produced])
            switch status {
            case Z_STREAM_END:
                // Another member may follow; anything else after the end is not gzip.
                let rest = input[consumed...]
                if rest.isEmpty || rest.allSatisfy({ $0 == 0 }) { return output }
                guard isCompressed(rest) else { throw GzipError(code: "corrupt", reason: "data after the end of the gzip stream") }
                guard inflateReset(&stream) == Z_OK else { throw GzipError(code: "corrupt", reason: "cannot reset zlib") }
            case Z_OK:
                continue
            case Z_BUF_ERROR:
                if consumed >= total { throw GzipError(code: "truncated", reason: "the gzip stream ends early") }
                continue
            default:
                throw GzipError(code: "corrupt", reason: "not valid gzip data (zlib status \(status))")
            }
        }
    }

    /// gzip-compresses `bytes` (for tests and shippers).
    public static func compress(_ bytes: [UInt8], level: Int32 = 6) -> [UInt8] {
        var stream = z_stream()
        guard deflateInit2_(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
                            Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return [] }
        defer { deflateEnd(&stream) }
        var input = bytes
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(bytes.count))) + 32)
        let written: Int = input.withUnsafeMutableBufferPointer { inputBuffer in
            output.withUnsafeMutableBufferPointer { outputBuffer in
                stream.next_in = inputBuffer.baseAddress
                stream.avail_in = UInt32(inputBuffer.count)
                stream.next_out = outputBuffer.baseAddress
                stream.avail_out = UInt32(outputBuffer.count)
                _ = deflate(&stream, Z_FINISH)
                return outputBuffer.count - Int(stream.avail_out)
            }
        }
        return Array(output[0..<written])
    }
}
