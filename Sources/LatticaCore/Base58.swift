/// Base58 with the Bitcoin alphabet (multibase `base58btc`, the canonical peer id text form).
/// Quadratic in the input length: intended for short values (ids, hashes).
public enum Base58 {
    @usableFromInline static let alphabet = Array("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz".utf8)

    @usableFromInline static let reverse: [Int8] = {
        var table = [Int8](repeating: -1, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = Int8(i) }
        return table
    }()

    public static func encode(_ b: [UInt8]) -> String {
        let zeros = b.prefix(while: { $0 == 0 }).count
        // log(256)/log(58) ~ 1.366
        var digits = [UInt8](repeating: 0, count: (b.count - zeros) * 138 / 100 + 1)
        var length = 0
        for byte in b[zeros...] {
            var carry = Int(byte)
            var i = 0
            var j = digits.count - 1
            while (carry != 0 || i < length) && j >= 0 {
                carry += 256 * Int(digits[j])
                digits[j] = UInt8(carry % 58)
                carry /= 58
                i += 1
                j -= 1
            }
            length = i
        }
        var out = [UInt8](repeating: alphabet[0], count: zeros)
        for d in digits[(digits.count - length)...] { out.append(alphabet[Int(d)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// `nil` for any character outside the alphabet (including whitespace).
    public static func decode(_ s: String) -> [UInt8]? {
        let chars = Array(s.utf8)
        let ones = chars.prefix(while: { $0 == alphabet[0] }).count
        // log(58)/log(256) ~ 0.733
        var bytes = [UInt8](repeating: 0, count: (chars.count - ones) * 733 / 1000 + 1)
        var length = 0
        for c in chars[ones...] {
            let v = reverse[Int(c)]
            if v < 0 { return nil }
            var carry = Int(v)
            var i = 0
            var j = bytes.count - 1
            while (carry != 0 || i < length) && j >= 0 {
                carry += 58 * Int(bytes[j])
                bytes[j] = UInt8(carry & 0xFF)
                carry >>= 8
                i += 1
                j -= 1
            }
            if carry != 0 { return nil }
            length = i
        }
        return [UInt8](repeating: 0, count: ones) + bytes[(bytes.count - length)...]
    }
}

/// RFC 4648 base32, lowercase alphabet, no padding (multibase prefix `b`).
/// Decoding is strict: lowercase only, no padding, canonical (zero) trailing bits.
public enum Base32 {
    @usableFromInline static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    public static func encode(_ b: some Collection<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((b.count * 8 + 4) / 5)
        var acc: UInt32 = 0
        var bits = 0
        for byte in b {
            acc = (acc << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(alphabet[Int((acc >> UInt32(bits)) & 31)])
            }
        }
        if bits > 0 { out.append(alphabet[Int((acc << UInt32(5 - bits)) & 31)]) }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ s: some StringProtocol) -> [UInt8]? {
        var out: [UInt8] = []
        var acc: UInt32 = 0
        var bits = 0
        var count = 0
        for c in s.utf8 {
            let v: UInt32
            switch c {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = UInt32(c - UInt8(ascii: "a"))
            case UInt8(ascii: "2")...UInt8(ascii: "7"): v = UInt32(c - UInt8(ascii: "2")) + 26
            default: return nil
            }
            acc = ((acc << 5) | v) & 0xFFFF
            bits += 5
            count += 1
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        // Valid unpadded lengths mod 8: 0, 2, 4, 5, 7; leftover bits must be zero.
        switch count % 8 {
        case 1, 3, 6: return nil
        default: break
        }
        if bits > 0 && acc & ((1 << UInt32(bits)) - 1) != 0 { return nil }
        return out
    }
}

/// RFC 4648 §5 base64url without padding (multibase prefix `u`, used for `/certhash` text).
public enum Base64URL {
    @usableFromInline static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    public static func encode(_ b: some Collection<UInt8>) -> String {
        var out: [UInt8] = []
        var acc: UInt32 = 0
        var bits = 0
        for byte in b {
            acc = ((acc << 8) | UInt32(byte)) & 0xFFFF
            bits += 8
            while bits >= 6 {
                bits -= 6
                out.append(alphabet[Int((acc >> UInt32(bits)) & 63)])
            }
        }
        if bits > 0 { out.append(alphabet[Int((acc << UInt32(6 - bits)) & 63)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Strict: no padding, no whitespace, canonical trailing bits.
    public static func decode(_ s: some StringProtocol) -> [UInt8]? {
        var out: [UInt8] = []
        var acc: UInt32 = 0
        var bits = 0
        var count = 0
        for c in s.utf8 {
            let v: UInt32
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = UInt32(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = UInt32(c - UInt8(ascii: "a")) + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = UInt32(c - UInt8(ascii: "0")) + 52
            case UInt8(ascii: "-"): v = 62
            case UInt8(ascii: "_"): v = 63
            default: return nil
            }
            acc = ((acc << 6) | v) & 0xFFFF
            bits += 6
            count += 1
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        if count % 4 == 1 { return nil }
        if bits > 0 && acc & ((1 << UInt32(bits)) - 1) != 0 { return nil }
        return out
    }
}
