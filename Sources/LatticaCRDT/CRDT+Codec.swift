public import LatticaCore

extension CRDT {
    /// Why bytes did not decode. Decoders never trap: every length and count is checked against
    /// a limit and against the bytes that remain before anything is allocated.
    public enum DecodeError: Error, Hashable, Sendable {
        case truncated
        case badVarint
        /// An unknown message, operation or value tag.
        case badTag(UInt8)
        /// A count or length over its bound (what, how many).
        case overLimit(String, UInt64)
        case badPeerId
        case badUTF8
        /// A field with a value that cannot be (seq 0, bool not 0/1, zero deltas, …).
        case badValue(String)
        case trailingBytes(Int)
    }

    /// Appends the canonical encoding (Docs/CRDT.md §5): multiformats unsigned varints (minimal),
    /// length-prefixed byte strings, single tag bytes. No field tags: layouts are positional, so
    /// one value has exactly one encoding.
    public struct ByteWriter: Sendable {
        public var bytes: [UInt8]
        public init(reserving n: Int = 0) { bytes = []; bytes.reserveCapacity(n) }

        @inlinable public mutating func u8(_ v: UInt8) { bytes.append(v) }
        @inlinable public mutating func uvarint(_ v: UInt64) { Varint.encode(v, into: &bytes) }
        @inlinable public mutating func count(_ n: Int) { Varint.encode(UInt64(n), into: &bytes) }
        public mutating func lengthPrefixed(_ b: some Collection<UInt8>) {
            count(b.count)
            bytes.append(contentsOf: b)
        }
        public mutating func string(_ s: String) { lengthPrefixed(s.utf8) }
        public mutating func raw(_ b: some Collection<UInt8>) { bytes.append(contentsOf: b) }
        public mutating func peer(_ p: PeerId) { lengthPrefixed(p.multihash) }
        public mutating func fixed64(_ v: UInt64) {
            for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
        }
    }

    /// Reads what `ByteWriter` writes. Every read checks bounds and throws `DecodeError`.
    public struct ByteReader: Sendable {
        public let input: ArraySlice<UInt8>
        public private(set) var position: Int

        public init(_ bytes: ArraySlice<UInt8>) { input = bytes; position = bytes.startIndex }

        public var remaining: Int { input.endIndex - position }
        public var isAtEnd: Bool { position >= input.endIndex }

        public mutating func u8() throws(DecodeError) -> UInt8 {
            guard position < input.endIndex else { throw .truncated }
            defer { position += 1 }
            return input[position]
        }

        public mutating func uvarint() throws(DecodeError) -> UInt64 {
            let decoded: (value: UInt64, length: Int)?
            do { decoded = try Varint.decode(input[position...]) } catch { throw .badVarint }
            guard let decoded else { throw .truncated }
            position += decoded.length
            return decoded.value
        }

        /// A count of elements that each take at least `minElementBytes`: over `max`, or more than
        /// the remaining bytes could hold, throws before the caller allocates anything.
        public mutating func count(max: Int, minElementBytes: Int = 1, _ what: String) throws(DecodeError) -> Int {
            let n = try uvarint()
            guard n <= UInt64(max) else { throw .overLimit(what, n) }
            guard n * UInt64(minElementBytes) <= UInt64(remaining) else { throw .truncated }
            return Int(n)
        }

        public mutating func raw(_ n: Int) throws(DecodeError) -> ArraySlice<UInt8> {
            guard n >= 0, n <= remaining else { throw .truncated }
            defer { position += n }
            return input[position..<(position + n)]
        }

        public mutating func lengthPrefixed(max: Int, _ what: String) throws(DecodeError) -> ArraySlice<UInt8> {
            try raw(count(max: max, what))
        }

        public mutating func string(max: Int, _ what: String) throws(DecodeError) -> String {
            guard let s = String(validating: try lengthPrefixed(max: max, what), as: UTF8.self) else { throw .badUTF8 }
            return s
        }

        public mutating func peer() throws(DecodeError) -> PeerId {
            let b = try lengthPrefixed(max: 2 + Multihash.maxIdentityDigest + 2, "peer id")
            do { return try PeerId(multihash: Array(b)) } catch { throw .badPeerId }
        }

        public mutating func fixed64() throws(DecodeError) -> UInt64 {
            let b = try raw(8)
            var v: UInt64 = 0
            for (i, x) in b.enumerated() { v |= UInt64(x) << (8 * UInt64(i)) }
            return v
        }

        public func expectEnd() throws(DecodeError) {
            guard isAtEnd else { throw .trailingBytes(remaining) }
        }
    }
}
