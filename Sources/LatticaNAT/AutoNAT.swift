import LatticaCore

/// AutoNAT v2 (libp2p/specs `autonat/autonat-v2.md`, rust-libp2p `protocols/autonat/src/v2`): a
/// client asks a server to dial one of its addresses back and prove it with a nonce on a fresh
/// connection. Codec here; the server's policy is `AutoNAT.ServerSession`, the client's tally
/// `AutoNAT.Tally`. Every message is uvarint-length-prefixed protobuf (Docs/WIRE-NAT.md, "AutoNAT v2").
public enum AutoNAT {
    public static let dialRequestProtocol = "/libp2p/autonat/2/dial-request"
    public static let dialBackProtocol = "/libp2p/autonat/2/dial-back"
    /// A frame larger than this is refused (a DialDataResponse carries at most 4096 data bytes).
    public static let maxMessageLength = 8192
    /// Addresses beyond this in one DialRequest are ignored.
    public static let maxAddrs = 64
    /// The spec's bound for one DialDataResponse's `data`.
    public static let maxDataChunk = 4096

    public enum ResponseStatus: UInt64, Sendable {
        case internalError = 0, requestRejected = 100, dialRefused = 101, ok = 200
    }

    public enum DialStatus: UInt64, Sendable {
        case unused = 0, dialError = 100, dialBackError = 101, ok = 200
    }

    public struct DialRequest: Hashable, Sendable {
        /// Binary multiaddrs, as sent (the server's `addrIdx` indexes this list).
        public var addrs: [[UInt8]]
        public var nonce: UInt64
        public init(addrs: [[UInt8]], nonce: UInt64) { self.addrs = addrs; self.nonce = nonce }
        public init(addrs: [Multiaddr], nonce: UInt64) { self.init(addrs: addrs.map(\.bytes), nonce: nonce) }
    }

    public struct DialResponse: Hashable, Sendable {
        /// nil: a status we do not understand (the spec says: discard the response).
        public var status: ResponseStatus?
        public var addrIdx: UInt32
        public var dialStatus: DialStatus?
        public init(status: ResponseStatus?, addrIdx: UInt32 = 0, dialStatus: DialStatus? = .unused) {
            self.status = status; self.addrIdx = addrIdx; self.dialStatus = dialStatus
        }
    }

    public enum Message: Hashable, Sendable {
        case dialRequest(DialRequest)
        case dialResponse(DialResponse)
        case dialDataRequest(addrIdx: UInt32, numBytes: UInt64)
        /// Only the length of `data` matters; the bytes are not kept.
        case dialDataResponse(dataLength: Int)
    }

    public enum DecodeError: String, Error, Sendable, CaseIterable {
        case protobuf
        case empty
        case tooLong = "too_long"
        case badField = "bad_field"
        case tooManyAddrs = "too_many_addrs"
        case dataTooLong = "data_too_long"
    }

    // MARK: encoding (unframed; `framed` adds the length prefix)

    public static func encode(_ m: Message) -> [UInt8] {
        var inner = ProtobufWriter()
        let field: Int
        switch m {
        case .dialRequest(let r):
            for a in r.addrs { inner.bytes(1, a) }
            inner.fixed64(2, r.nonce)
            field = 1
        case .dialResponse(let r):
            inner.uint64(1, r.status?.rawValue ?? 0)
            inner.uint64(2, UInt64(r.addrIdx))
            inner.uint64(3, r.dialStatus?.rawValue ?? 0)
            field = 2
        case .dialDataRequest(let idx, let n):
            inner.uint64(1, UInt64(idx))
            inner.uint64(2, n)
            field = 3
        case .dialDataResponse(let n):
            inner.bytes(1, [UInt8](repeating: 0, count: n))
            field = 4
        }
        var outer = ProtobufWriter()
        outer.message(field, inner)
        return outer.bytes
    }

    public static func encodeDialBack(nonce: UInt64) -> [UInt8] {
        var w = ProtobufWriter()
        w.fixed64(1, nonce)
        return w.bytes
    }

    public static func encodeDialBackResponse() -> [UInt8] {
        var w = ProtobufWriter()
        w.uint64(1, 0)
        return w.bytes
    }

    public static func framed(_ body: [UInt8]) -> [UInt8] { Varint.encoded(UInt64(body.count)) + body }

    // MARK: decoding

    public static func decode(_ bytes: ArraySlice<UInt8>) -> Result<Message, DecodeError> {
        guard bytes.count <= maxMessageLength else { return .failure(.tooLong) }
        var r = ProtobufReader(bytes)
        var found: Message?
        do {
            while let f = try r.next() {
                guard let body = f.bytesValue, (1...4).contains(f.field) else { continue }
                switch f.field {
                case 1: found = .dialRequest(try decodeRequest(body))
                case 2: found = .dialResponse(try decodeResponse(body))
                case 3: found = try decodeDataRequest(body)
                default: found = .dialDataResponse(dataLength: try decodeDataResponse(body))
                }
            }
        } catch let e as DecodeError { return .failure(e) } catch { return .failure(.protobuf) }
        return found.map { .success($0) } ?? .failure(.empty)
    }

    static func decodeRequest(_ b: ArraySlice<UInt8>) throws -> DialRequest {
        var r = ProtobufReader(b)
        var addrs: [[UInt8]] = []
        var nonce: UInt64 = 0
        while let f = try r.next() {
            switch (f.field, f) {
            case (1, .bytes(_, let v)):
                guard addrs.count < maxAddrs else { throw DecodeError.tooManyAddrs }
                addrs.append(Array(v))
            case (2, .fixed64(_, let v)): nonce = v
            case (1, _), (2, _): throw DecodeError.badField
            default: break
            }
        }
        return DialRequest(addrs: addrs, nonce: nonce)
    }

    static func decodeResponse(_ b: ArraySlice<UInt8>) throws -> DialResponse {
        var r = ProtobufReader(b)
        var out = DialResponse(status: .internalError)
        while let f = try r.next() {
            switch (f.field, f) {
            case (1, .varint(_, let v)): out.status = ResponseStatus(rawValue: v)
            case (2, .varint(_, let v)):
                guard v <= UInt64(UInt32.max) else { throw DecodeError.badField }
                out.addrIdx = UInt32(v)
            case (3, .varint(_, let v)): out.dialStatus = DialStatus(rawValue: v)
            case (1, _), (2, _), (3, _): throw DecodeError.badField
            default: break
            }
        }
        return out
    }

    static func decodeDataRequest(_ b: ArraySlice<UInt8>) throws -> Message {
        var r = ProtobufReader(b)
        var idx: UInt32 = 0, n: UInt64 = 0
        while let f = try r.next() {
            switch (f.field, f) {
            case (1, .varint(_, let v)):
                guard v <= UInt64(UInt32.max) else { throw DecodeError.badField }
                idx = UInt32(v)
            case (2, .varint(_, let v)): n = v
            case (1, _), (2, _): throw DecodeError.badField
            default: break
            }
        }
        return .dialDataRequest(addrIdx: idx, numBytes: n)
    }

    static func decodeDataResponse(_ b: ArraySlice<UInt8>) throws -> Int {
        var r = ProtobufReader(b)
        var n = 0
        while let f = try r.next() {
            if f.field == 1 {
                guard let v = f.bytesValue else { throw DecodeError.badField }
                guard v.count <= maxDataChunk else { throw DecodeError.dataTooLong }
                n += v.count
            }
        }
        return n
    }

    /// The nonce of a DialBack; nil when malformed.
    public static func decodeDialBack(_ b: ArraySlice<UInt8>) -> UInt64? {
        var r = ProtobufReader(b)
        var nonce: UInt64?
        while let f = try? r.next() {
            if case .fixed64(1, let v) = f { nonce = v } else if f.field == 1 { return nil }
        }
        return r.isAtEnd ? nonce : nil
    }

    /// Splits a byte stream into uvarint-length-prefixed frames, at most `maxLength` bytes each.
    public struct FrameReader: Sendable {
        public let maxLength: Int
        var buffer: [UInt8] = []
        public init(maxLength: Int = AutoNAT.maxMessageLength) { self.maxLength = maxLength }

        public enum Output: Equatable, Sendable { case frame([UInt8]), tooLong, badLength }

        /// The complete frames in what arrived so far; stops at the first error.
        public mutating func push(_ bytes: some Collection<UInt8>) -> [Output] {
            buffer.append(contentsOf: bytes)
            var out: [Output] = []
            while true {
                let decoded: (value: UInt64, length: Int)?
                do { decoded = try Varint.decode(buffer[...]) } catch {
                    out.append(.badLength); buffer = []; return out
                }
                guard let (len, n) = decoded else {
                    if buffer.count > Varint.maxLength { out.append(.badLength); buffer = [] }
                    return out
                }
                guard len <= UInt64(maxLength) else { out.append(.tooLong); buffer = []; return out }
                guard buffer.count - n >= Int(len) else { return out }
                out.append(.frame(Array(buffer[n..<(n + Int(len))])))
                buffer.removeFirst(n + Int(len))
            }
        }
    }
}
