import LatticaCore

extension Model {
    /// What a downloader asks for: one request per stream, then FIN (Docs/MODEL.md).
    ///
    ///     MANIFEST:  01 ‖ 32 B id
    ///     CHUNKS:    02 ‖ 32 B id ‖ u32 first ‖ u32 count        (big-endian, count ≥ 1)
    public enum Request: Equatable, Sendable {
        case manifest(ModelID)
        case chunks(ModelID, first: Int, count: Int)

        public static let maxLength = 41

        public var id: ModelID {
            switch self {
            case .manifest(let id), .chunks(let id, _, _): id
            }
        }

        public var encoded: [UInt8] {
            switch self {
            case .manifest(let id):
                return [0x01] + id.bytes
            case .chunks(let id, let first, let count):
                var out: [UInt8] = [0x02] + id.bytes
                Model.appendBE(&out, UInt64(first), bytes: 4)
                Model.appendBE(&out, UInt64(count), bytes: 4)
                return out
            }
        }

        public enum Decoded: Equatable, Sendable { case incomplete, request(Request), malformed }

        /// Decodes the bytes read so far; `finished` once the requester closed its side. Bounded:
        /// a request is at most 41 bytes, more is malformed.
        public static func decode(_ b: ArraySlice<UInt8>, finished: Bool) -> Decoded {
            guard let kind = b.first else { return finished ? .malformed : .incomplete }
            let need: Int
            switch kind {
            case 0x01: need = 33
            case 0x02: need = 41
            default: return .malformed
            }
            if b.count < need { return finished ? .malformed : .incomplete }
            if b.count > need { return .malformed }
            let s = b.startIndex
            guard let id = ModelID(bytes: b[(s + 1)..<(s + 33)]) else { return .malformed }
            if kind == 0x01 { return .request(.manifest(id)) }
            let first = Model.readBE(b, at: s + 33, bytes: 4), count = Model.readBE(b, at: s + 37, bytes: 4)
            guard count >= 1 else { return .malformed }
            return .request(.chunks(id, first: Int(first), count: Int(count)))
        }
    }

    /// Frames of a response, written by the server after the request, then FIN.
    ///
    ///     MANIFEST:  01 ‖ u32 n ‖ n bytes (the manifest)
    ///     CHUNK:     02 ‖ u32 index ‖ u32 n ‖ n bytes (the chunk)
    ///     ERROR:     03 ‖ u8 code ‖ u16 n ‖ n bytes UTF-8 (n ≤ 256)
    public enum Frame {
        public static let manifest: UInt8 = 0x01
        public static let chunk: UInt8 = 0x02
        public static let error: UInt8 = 0x03
        public static let maxErrorMessage = 256

        public static func headerLength(_ type: UInt8) -> Int? {
            switch type {
            case manifest: 5
            case chunk: 9
            case error: 4
            default: nil
            }
        }

        public static func manifestHeader(length: Int) -> [UInt8] {
            var out: [UInt8] = [manifest]
            Model.appendBE(&out, UInt64(length), bytes: 4)
            return out
        }

        public static func chunkHeader(index: Int, length: Int) -> [UInt8] {
            var out: [UInt8] = [chunk]
            Model.appendBE(&out, UInt64(index), bytes: 4)
            Model.appendBE(&out, UInt64(length), bytes: 4)
            return out
        }

        public static func error(_ code: ErrorCode, _ message: String) -> [UInt8] {
            let m = Array(message.utf8.prefix(maxErrorMessage))
            var out: [UInt8] = [error, code.rawValue]
            Model.appendBE(&out, UInt64(m.count), bytes: 2)
            return out + m
        }
    }

    /// The code of an ERROR frame.
    public enum ErrorCode: UInt8, Sendable {
        case notFound = 1
        case badRange = 2
        case busy = 3
        case malformedRequest = 4
        case unknown = 255

        public init(byte: UInt8) { self = ErrorCode(rawValue: byte) ?? .unknown }
    }

    /// What the server answers a request with, given the manifest it has (nil: not stored).
    public enum Plan: Equatable, Sendable {
        case error(ErrorCode, String)
        case manifest
        case chunks(first: Int, count: Int)
    }

    public static func plan(_ r: Request, manifest: Manifest?) -> Plan {
        guard let m = manifest else { return .error(.notFound, "model \(r.id.hex) is not stored here") }
        switch r {
        case .manifest: return .manifest
        case .chunks(_, let first, let count):
            guard first < m.chunkCount, count <= m.chunkCount - first else {
                return .error(.badRange, "chunks \(first)+\(count) outside 0..<\(m.chunkCount)")
            }
            return .chunks(first: first, count: count)
        }
    }
}
