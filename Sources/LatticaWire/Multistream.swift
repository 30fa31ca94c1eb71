import LatticaCore

/// multistream-select 1.0 (`/multistream/1.0.0`): protocol negotiation on a fresh connection and on
/// every new yamux stream. Spec: https://github.com/multiformats/multistream-select
///
/// Every message is `uvarint(len) || utf8 text || '\n'`, where `len` counts the newline.
/// The dialer sends the header and its first proposal in one write (as rust-libp2p does);
/// the listener sends its header eagerly, answers each proposal with an echo (accept) or `na`,
/// and answers `ls` with its protocol list. See Docs/WIRE.md.
public enum Multistream {
    public static let protocolID = "/multistream/1.0.0"
    static let notAvailable = "na"
    static let list = "ls"

    public struct Settings: Sendable, Hashable {
        /// Longest accepted message, text plus newline (rust-libp2p allows 140-byte protocol names).
        public var maxMessageLength: Int
        /// Listener: proposals answered `na` before giving up. Dialer: bounded by its own list.
        public var maxAttempts: Int

        public init(maxMessageLength: Int = 1024, maxAttempts: Int = 16) {
            self.maxMessageLength = maxMessageLength
            self.maxAttempts = maxAttempts
        }
    }

    public enum Failure: Error, Hashable, Sendable {
        /// A length prefix above `Settings.maxMessageLength`.
        case messageTooLong(Int)
        /// Bad varint, missing newline, empty or non-UTF-8 text.
        case malformedMessage
        /// The first message was not `/multistream/1.0.0`.
        case badHeader(String)
        /// Dialer: every proposal was answered `na`.
        case noCommonProtocol([String])
        /// Listener: too many unsupported proposals.
        case tooManyAttempts
        /// Dialer: the listener answered something other than our proposal or `na`.
        case unexpectedResponse(String)
        /// Dialer created with no protocol to propose.
        case nothingToPropose
    }

    public enum Directive: Hashable, Sendable {
        /// Bytes to write to the peer.
        case send([UInt8])
        /// Negotiation finished; `leftover` already belongs to `protocol`.
        case negotiated(protocol: String, leftover: [UInt8])
        /// Negotiation failed; close or reset the underlying stream.
        case failed(Failure)
    }

    /// Encodes one multistream message.
    public static func encode(_ text: String, into out: inout [UInt8]) {
        let utf8 = text.utf8
        Varint.encode(UInt64(utf8.count + 1), into: &out)
        out.append(contentsOf: utf8)
        out.append(0x0A)
    }

    public static func encoded(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        encode(text, into: &out)
        return out
    }

    /// The `ls` response body as go/rust-libp2p write it: one length-prefixed message whose
    /// content is each protocol as its own `uvarint(len) proto '\n'`, followed by a final `'\n'`.
    public static func encodeList(_ protocols: [String], into out: inout [UInt8]) {
        var inner: [UInt8] = []
        for p in protocols { encode(p, into: &inner) }
        inner.append(0x0A)
        Varint.encode(UInt64(inner.count), into: &out)
        out.append(contentsOf: inner)
    }

    enum Parsed: Equatable {
        case message(String, consumed: Int)
        case needMore
        case failure(Failure)
    }

    /// Parses one message from the front of `buffer`.
    static func parse(_ buffer: ArraySlice<UInt8>, maxLength: Int) -> Parsed {
        let decoded: (value: UInt64, length: Int)?
        do { decoded = try Varint.decode(buffer) } catch { return .failure(.malformedMessage) }
        guard let (len, n) = decoded else { return .needMore }
        guard len <= UInt64(maxLength) else { return .failure(.messageTooLong(Int(clamping: len))) }
        let length = Int(len)
        guard length >= 2 else { return .failure(.malformedMessage) }
        guard buffer.count - n >= length else { return .needMore }
        let start = buffer.startIndex + n
        guard buffer[start + length - 1] == 0x0A else { return .failure(.malformedMessage) }
        let body = buffer[start..<(start + length - 1)]
        guard !body.contains(0x0A), let text = String(validating: body, as: UTF8.self) else {
            return .failure(.malformedMessage)
        }
        return .message(text, consumed: n + length)
    }
}
