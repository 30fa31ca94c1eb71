/// Little-endian reading over a byte slice that never traps: every read checks the remaining
/// length and reports what was being read.
struct ByteReader {
    let bytes: [UInt8]
    var offset = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func take(_ n: Int, _ what: String) throws(DecodeFailure) -> ArraySlice<UInt8> {
        guard n >= 0, remaining >= n else { throw DecodeFailure(what: what, offset: offset) }
        defer { offset += n }
        return bytes[offset..<(offset + n)]
    }

    mutating func u8(_ what: String) throws(DecodeFailure) -> UInt8 { try take(1, what).first! }

    mutating func u16(_ what: String) throws(DecodeFailure) -> UInt16 {
        let s = try take(2, what); return UInt16(s[s.startIndex]) | UInt16(s[s.startIndex + 1]) << 8
    }

    mutating func u32(_ what: String) throws(DecodeFailure) -> UInt32 {
        let s = try take(4, what)
        var v: UInt32 = 0
        for (i, b) in s.enumerated() { v |= UInt32(b) << (8 * UInt32(i)) }
        return v
    }

    mutating func u64(_ what: String) throws(DecodeFailure) -> UInt64 {
        let s = try take(8, what)
        var v: UInt64 = 0
        for (i, b) in s.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return v
    }
}

struct DecodeFailure: Error { var what: String; var offset: Int }

extension Array where Element == UInt8 {
    mutating func appendLE(_ v: UInt16) { append(UInt8(v & 0xff)); append(UInt8(v >> 8)) }
    mutating func appendLE(_ v: UInt32) { for i in 0..<4 { append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
    mutating func appendLE(_ v: UInt64) { for i in 0..<8 { append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
    mutating func appendFloats(_ values: [Float]) {
        reserveCapacity(count + values.count * 4)
        for v in values { appendLE(v.bitPattern) }
    }
}
