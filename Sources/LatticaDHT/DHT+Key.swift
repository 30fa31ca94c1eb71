public import LatticaCore

extension DHT {
    /// A point in the 256-bit Kademlia keyspace: SHA-256 of the key bytes (kad-dht spec, "Distance").
    /// Stored as four big-endian 64-bit words so XOR, comparison and leading-zero counts are cheap.
    public struct Key: Hashable, Comparable, Sendable, CustomStringConvertible {
        public var w0, w1, w2, w3: UInt64

        @inlinable public init(w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64) {
            self.w0 = w0; self.w1 = w1; self.w2 = w2; self.w3 = w3
        }

        /// The Kademlia key of arbitrary record/provider key bytes: SHA-256 of them.
        public init(hashing bytes: some Collection<UInt8>) { self.init(digest: PureSHA256.hash(bytes)) }

        /// The Kademlia key of a peer: SHA-256 of its PeerId multihash bytes.
        public init(peer: PeerId) { self.init(hashing: peer.multihash) }

        /// Interprets 32 bytes (a SHA-256 digest) as a key; shorter input is zero-padded.
        public init(digest: [UInt8]) {
            func word(_ i: Int) -> UInt64 {
                var v: UInt64 = 0
                for j in 0..<8 { v = v << 8 | UInt64(i * 8 + j < digest.count ? digest[i * 8 + j] : 0) }
                return v
            }
            self.init(w0: word(0), w1: word(1), w2: word(2), w3: word(3))
        }

        public static let zero = Key(w0: 0, w1: 0, w2: 0, w3: 0)

        public var bytes: [UInt8] {
            [w0, w1, w2, w3].flatMap { w in (0..<8).map { UInt8(truncatingIfNeeded: w >> (56 - 8 * UInt64($0))) } }
        }

        /// XOR distance (itself a key-sized number; smaller is closer).
        @inlinable public func distance(to other: Key) -> Key {
            Key(w0: w0 ^ other.w0, w1: w1 ^ other.w1, w2: w2 ^ other.w2, w3: w3 ^ other.w3)
        }

        /// Number of leading zero bits (256 for zero): the length of the common prefix when this is a distance.
        @inlinable public var leadingZeroBitCount: Int {
            if w0 != 0 { return w0.leadingZeroBitCount }
            if w1 != 0 { return 64 + w1.leadingZeroBitCount }
            if w2 != 0 { return 128 + w2.leadingZeroBitCount }
            return 192 + w3.leadingZeroBitCount
        }

        @inlinable public static func < (a: Key, b: Key) -> Bool {
            if a.w0 != b.w0 { return a.w0 < b.w0 }
            if a.w1 != b.w1 { return a.w1 < b.w1 }
            if a.w2 != b.w2 { return a.w2 < b.w2 }
            return a.w3 < b.w3
        }

        /// Bit `i` counted from the most significant (0...255).
        @inlinable public func bit(_ i: Int) -> Bool {
            let w = i < 64 ? w0 : i < 128 ? w1 : i < 192 ? w2 : w3
            return (w >> UInt64(63 - i % 64)) & 1 == 1
        }

        /// This key with bit `i` (from the most significant) flipped.
        public func flipping(bit i: Int) -> Key {
            var k = self
            let m = UInt64(1) << UInt64(63 - i % 64)
            switch i / 64 { case 0: k.w0 ^= m; case 1: k.w1 ^= m; case 2: k.w2 ^= m; default: k.w3 ^= m }
            return k
        }

        public var description: String {
            let hex = Array("0123456789abcdef")
            return String(bytes.prefix(6).flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 15)]] })
        }
    }
}
