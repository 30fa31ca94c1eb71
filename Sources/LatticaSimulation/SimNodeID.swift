/// A node of a simulation: an index into the simulator's arrays, dense from 0 in the order nodes were added.
public struct SimNodeID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var raw: Int

    @inlinable public init(_ raw: Int) { self.raw = raw }
    @inlinable public init(raw: Int) { self.raw = raw }

    @inlinable public static func < (a: SimNodeID, b: SimNodeID) -> Bool { a.raw < b.raw }

    public var description: String { "n\(raw)" }
}

/// The 64-bit running digest of a simulation and helpers to fingerprint messages deterministically.
///
/// Swift's `Hasher` is randomly seeded per process, so `hashValue` is only stable inside one process.
/// Use these helpers (or `SWIFT_DETERMINISTIC_HASHING=1`) when a digest is compared across processes.
public enum SimDigest {
    /// Mixes `value` into `state` (a multiply–xorshift finaliser; order-sensitive).
    @inlinable @inline(__always)
    public static func combine(_ state: UInt64, _ value: UInt64) -> UInt64 {
        var x = (state ^ value) &* 0x9E37_79B9_7F4A_7C15
        x ^= x >> 29
        x = x &* 0xBF58_476D_1CE4_E5B9
        x ^= x >> 32
        return x
    }

    /// A deterministic fingerprint of a byte string (FNV-1a folded through `combine`).
    public static func fingerprint(bytes: some Sequence<UInt8>) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        var n: UInt64 = 0
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3; n &+= 1 }
        return combine(h, n)
    }

    /// A deterministic fingerprint of a sequence of integers.
    public static func fingerprint(words: some Sequence<UInt64>) -> UInt64 {
        var h: UInt64 = 0x243F_6A88_85A3_08D3
        for w in words { h = combine(h, w) }
        return h
    }
}
