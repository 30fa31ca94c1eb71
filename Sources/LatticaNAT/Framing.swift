import LatticaCore

/// Reads unsigned-varint length-prefixed messages from a stream whose bytes arrive in pieces, and
/// hands back what follows the message: after a relay's `STATUS: OK` the same stream carries the
/// relayed connection, and its first bytes may arrive in the same read as the status.
public struct FramedReader: Sendable {
    public enum Failure: Error, Equatable, Sendable {
        case malformedLength
        case tooLong(Int)
    }

    public let maxMessageLength: Int
    private var buffer: [UInt8] = []

    public init(maxMessageLength: Int) { self.maxMessageLength = maxMessageLength }

    /// Bytes buffered but not yet returned as a message.
    public var buffered: Int { buffer.count }

    /// Appends `bytes`; returns the next whole message, or nil while more bytes are needed. Call
    /// again with `[]` to get further messages already buffered.
    public mutating func next(_ bytes: some Collection<UInt8>) throws(Failure) -> [UInt8]? {
        buffer.append(contentsOf: bytes)
        let decoded: (value: UInt64, length: Int)?
        do { decoded = try Varint.decode(buffer[...]) } catch { throw .malformedLength }
        guard let (length, n) = decoded else {
            if buffer.count > Varint.maxLength { throw .malformedLength }
            return nil
        }
        guard length <= UInt64(maxMessageLength) else { throw .tooLong(Int(clamping: length)) }
        guard buffer.count - n >= Int(length) else { return nil }
        let message = Array(buffer[n..<(n + Int(length))])
        buffer.removeFirst(n + Int(length))
        return message
    }

    /// Takes what is buffered beyond the messages read (the relayed connection's first bytes).
    public mutating func takeRest() -> [UInt8] {
        defer { buffer = [] }
        return buffer
    }

    /// `message` with its varint length prefix.
    public static func frame(_ message: [UInt8]) -> [UInt8] {
        var out = Varint.encoded(UInt64(message.count))
        out.append(contentsOf: message)
        return out
    }
}
