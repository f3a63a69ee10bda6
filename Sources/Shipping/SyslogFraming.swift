// Pure framing of syslog over TCP (RFC 6587): no I/O, fed bytes as they arrive.

/// One syslog message cut out of a stream or datagram.
public struct SyslogFrame: Sendable, Equatable {
    /// The message bytes (at most the receiver's maximum message size).
    public var bytes: [UInt8]
    /// Whether the sender's message was longer than the maximum and was cut to it.
    public var truncated: Bool

    /// A frame.
    public init(bytes: [UInt8], truncated: Bool = false) {
        self.bytes = bytes
        self.truncated = truncated
    }
}

/// Splits a TCP byte stream into syslog messages per RFC 6587.
///
/// The method is chosen per connection from its first byte: a digit `1`-`9` means octet
/// counting (`LEN SP MSG`, so a message may contain LF), anything else means non-transparent
/// framing with LF as the trailer. LF frames keep every byte before the LF (a CR stays: the
/// record is byte-exact); empty lines are skipped.
///
/// Messages longer than `maxMessageSize` are cut at the limit and flagged `truncated`; the rest
/// of such a message is skipped, so the following messages still frame correctly.
public struct SyslogStreamFramer: Sendable {
    /// The framing method of a connection.
    public enum Method: Sendable, Equatable {
        /// `LEN SP MSG` (RFC 6587 3.4.1).
        case octetCounting
        /// Messages ended by LF (RFC 6587 3.4.2).
        case nonTransparent
    }

    private enum State: Sendable {
        case start
        /// Reading the decimal length; `digits` so far.
        case length(Int, digits: Int)
        /// Reading an octet-counted body: `remaining` bytes of the message still to come.
        case body(remaining: Int, truncated: Bool)
        /// Reading an LF-framed message.
        case line
        /// Skipping the rest of an over-long LF-framed message up to its LF.
        case skippingLine
    }

    /// Longest message kept; longer ones are cut here.
    public let maxMessageSize: Int
    /// The method detected from the first byte, `nil` until a byte arrived.
    public private(set) var method: Method?
    private var state = State.start
    private var current: [UInt8] = []

    /// The decimal length may have at most this many digits (a 999 MB message is already absurd).
    static let maxLengthDigits = 9

    /// A framer for one connection.
    public init(maxMessageSize: Int) {
        precondition(maxMessageSize > 0, "maxMessageSize must be positive")
        self.maxMessageSize = maxMessageSize
    }

    /// Consumes `bytes`, returning every message completed by them. Throws `bad_framing` when
    /// the stream cannot be framed; the connection is then closed (there is no resynchronizing
    /// after a bad octet count).
    public mutating func feed<Bytes: Collection<UInt8>>(_ bytes: Bytes) throws(ShippingError) -> [SyslogFrame] {
        var frames: [SyslogFrame] = []
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            switch state {
            case .start:
                if method == nil { method = (0x31...0x39).contains(byte) ? .octetCounting : .nonTransparent }
                if method == .octetCounting {
                    guard (0x31...0x39).contains(byte) else {
                        throw .badFraming("octet-counted frame does not start with a length")
                    }
                    state = .length(Int(byte - 0x30), digits: 1)
                    index = bytes.index(after: index)
                } else {
                    state = .line
                }
            case .length(let value, let digits):
                index = bytes.index(after: index)
                if byte == 0x20 {
                    state = .body(remaining: value, truncated: value > maxMessageSize)
                    current.reserveCapacity(min(value, maxMessageSize))
                } else if (0x30...0x39).contains(byte) && digits < Self.maxLengthDigits {
                    state = .length(value * 10 + Int(byte - 0x30), digits: digits + 1)
                } else {
                    throw .badFraming("bad octet count (\(digits) digits, then byte \(byte))")
                }
            case .body(let remaining, let truncated):
                let available = bytes.distance(from: index, to: bytes.endIndex)
                let take = min(remaining, available)
                let end = bytes.index(index, offsetBy: take)
                let room = maxMessageSize - current.count
                if room > 0 { current.append(contentsOf: bytes[index..<bytes.index(index, offsetBy: min(room, take))]) }
                index = end
                if take == remaining {
                    frames.append(SyslogFrame(bytes: current, truncated: truncated))
                    current = []
                    state = .start
                } else {
                    state = .body(remaining: remaining - take, truncated: truncated)
                }
            case .line:
                // Copy up to the LF (or the end of this chunk) in one go.
                let rest = bytes[index...]
                let newline = rest.firstIndex(of: 0x0A)
                let end = newline ?? bytes.endIndex
                let room = maxMessageSize - current.count
                let length = bytes.distance(from: index, to: end)
                if length > room {
                    current.append(contentsOf: bytes[index..<bytes.index(index, offsetBy: room)])
                    frames.append(SyslogFrame(bytes: current, truncated: true))
                    current = []
                    if let newline {
                        index = bytes.index(after: newline)
                        state = .start
                    } else {
                        index = bytes.endIndex
                        state = .skippingLine
                    }
                } else {
                    current.append(contentsOf: bytes[index..<end])
                    if let newline {
                        if !current.isEmpty { frames.append(SyslogFrame(bytes: current)) }
                        current = []
                        index = bytes.index(after: newline)
                        state = .start
                    } else {
                        index = bytes.endIndex
                    }
                }
            case .skippingLine:
                if let newline = bytes[index...].firstIndex(of: 0x0A) {
                    index = bytes.index(after: newline)
                    state = .start
                } else {
                    index = bytes.endIndex
                }
            }
        }
        return frames
    }

    /// Called when the sender closed the connection: an LF-framed message without its final LF
    /// is complete; a partial octet-counted message is not (and is returned as `nil`).
    public mutating func finish() -> (frame: SyslogFrame?, incomplete: Bool) {
        defer {
            current = []
            state = .start
        }
        switch state {
        case .line where !current.isEmpty:
            return (SyslogFrame(bytes: current), false)
        case .length, .body:
            return (nil, true)
        default:
            return (nil, false)
        }
    }
}
