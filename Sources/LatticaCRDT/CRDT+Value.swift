extension CRDT {
    /// A value held by a register, a map entry, a set element or a multi-value register.
    /// Ordered by its canonical encoding (the deterministic tie-break for equal stamps).
    public enum Value: Hashable, Comparable, Sendable, CustomStringConvertible {
        case bytes([UInt8])
        case string(String)
        case int(Int64)
        case bool(Bool)

        public var tag: UInt8 {
            switch self {
            case .bytes: 1
            case .string: 2
            case .int: 3
            case .bool: 4
            }
        }

        public func encode(into w: inout ByteWriter) {
            w.u8(tag)
            switch self {
            case .bytes(let b): w.lengthPrefixed(b)
            case .string(let s): w.string(s)
            case .int(let i): w.fixed64(UInt64(bitPattern: i))
            case .bool(let b): w.u8(b ? 1 : 0)
            }
        }

        public init(from r: inout ByteReader, maxLength: Int) throws(DecodeError) {
            let tag = try r.u8()
            switch tag {
            case 1: self = .bytes(Array(try r.lengthPrefixed(max: maxLength, "value bytes")))
            case 2: self = .string(try r.string(max: maxLength, "value string"))
            case 3: self = .int(Int64(bitPattern: try r.fixed64()))
            case 4:
                let b = try r.u8()
                guard b <= 1 else { throw .badValue("bool \(b)") }
                self = .bool(b == 1)
            default: throw .badTag(tag)
            }
        }

        /// The canonical encoding (tag and content).
        public var encoded: [UInt8] {
            var w = ByteWriter()
            encode(into: &w)
            return w.bytes
        }

        /// Bytes of content (what the value size limit counts).
        public var contentLength: Int {
            switch self {
            case .bytes(let b): b.count
            case .string(let s): s.utf8.count
            case .int, .bool: 8
            }
        }

        public static func < (a: Value, b: Value) -> Bool { a.encoded.lexicographicallyPrecedes(b.encoded) }

        public var description: String {
            switch self {
            case .bytes(let b): "0x" + b.map { String($0 >> 4, radix: 16) + String($0 & 15, radix: 16) }.joined()
            case .string(let s): s
            case .int(let i): String(i)
            case .bool(let b): String(b)
            }
        }
    }
}
