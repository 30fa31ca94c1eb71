/// Unsigned varint as specified by multiformats (https://github.com/multiformats/unsigned-varint):
/// little-endian base-128 groups, high bit = "more bytes follow", at most 9 bytes (63 bits of
/// value), and the encoding must be minimal (no trailing `0x00` group after the first byte).
///
/// Used on hot paths (multistream/noise/yamux length prefixes), hence `@inlinable` throughout.
/// Values >= 2^63 are not representable in 9 bytes: `encode` writes the 10-byte LEB128 form
/// anyway (for completeness) and `decode` rejects it with `.overflow`.
public enum Varint {
    /// The largest number of bytes a multiformats varint may occupy.
    public static let maxLength = 9

    /// Appends the minimal encoding of `value` to `out`.
    @inlinable public static func encode(_ value: UInt64, into out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(truncatingIfNeeded: v))
    }

    @inlinable public static func encoded(_ value: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(encodedLength(value))
        encode(value, into: &out)
        return out
    }

    /// Number of bytes `encode` writes for `value` (1...10).
    @inlinable public static func encodedLength(_ value: UInt64) -> Int {
        let bits = 64 - (value | 1).leadingZeroBitCount
        return (bits + 6) / 7
    }

    /// Decodes a varint at the start of `bytes`.
    /// - Returns: the value and the number of bytes it occupied, or `nil` if `bytes` ends before the
    ///   varint does (need more input; never more than 9 bytes are examined).
    /// - Throws: `.overflow` if a 9th byte still has its continuation bit set, `.nonMinimal` if the
    ///   last byte of a multi-byte varint is zero.
    @inlinable public static func decode(_ bytes: ArraySlice<UInt8>) throws(VarintError) -> (value: UInt64, length: Int)? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        var i = bytes.startIndex
        var n = 0
        while i < bytes.endIndex {
            let b = bytes[i]
            n &+= 1
            value |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 {
                if b == 0 && n > 1 { throw .nonMinimal }
                return (value, n)
            }
            if n == 9 { throw .overflow }  // maxLength, as a literal for the hot path
            shift &+= 7
            i &+= 1
        }
        return nil
    }
}

public enum VarintError: Error, Hashable, Sendable {
    /// More than 9 bytes (value does not fit in 63 bits).
    case overflow
    /// A longer encoding than necessary (trailing zero group).
    case nonMinimal
}
