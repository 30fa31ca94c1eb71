// TEMP until LatticaCore's `Varint` lands on main: a minimal unsigned-varint codec
// (multiformats rules: LEB128, at most 9 bytes, minimal encoding). Internal only.

enum WireVarint {
    enum Result: Equatable {
        case value(UInt64, length: Int)
        case needMore
        case invalid
    }

    static func encode(_ value: UInt64, into out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    static func encodedLength(_ value: UInt64) -> Int {
        var n = 1
        var v = value >> 7
        while v != 0 { n += 1; v >>= 7 }
        return n
    }

    /// Decodes from the start of `bytes`; never traps.
    static func decode(_ bytes: ArraySlice<UInt8>) -> Result {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        var i = bytes.startIndex
        var n = 0
        while i < bytes.endIndex {
            let b = bytes[i]
            n += 1
            if n > 9 { return .invalid }
            value |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 {
                if b == 0 && n > 1 { return .invalid }  // non-minimal
                return .value(value, length: n)
            }
            shift += 7
            i += 1
        }
        return n >= 9 ? .invalid : .needMore
    }
}
