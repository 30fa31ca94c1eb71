// TEMP until LatticaCore lands (contract API: Varint, Protobuf*, PeerId, SHA256).
// Delete this whole file after `git merge main`.

public enum Varint {
    public static func encode(_ value: UInt64, into out: inout [UInt8]) {
        var v = value
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
    }
    public static func encoded(_ value: UInt64) -> [UInt8] { var o: [UInt8] = []; encode(value, into: &o); return o }
    public static func encodedLength(_ value: UInt64) -> Int { var n = 1, v = value; while v >= 0x80 { v >>= 7; n += 1 }; return n }
    public static func decode(_ bytes: ArraySlice<UInt8>) throws(VarintError) -> (value: UInt64, length: Int)? {
        var value: UInt64 = 0
        var i = bytes.startIndex, n = 0
        while i < bytes.endIndex {
            let b = bytes[i]
            if n == 9 { throw .overflow }
            if n == 8 && b > 1 { throw .overflow }
            value |= UInt64(b & 0x7F) << (7 * UInt64(n))
            n += 1
            if b & 0x80 == 0 {
                if b == 0 && n > 1 { throw .nonMinimal }
                return (value, n)
            }
            i += 1
        }
        return nil
    }
}
public enum VarintError: Error, Hashable, Sendable { case overflow, nonMinimal }

public struct ProtobufWriter: Sendable {
    public init() {}
    public private(set) var bytes: [UInt8] = []
    mutating func tag(_ field: Int, _ wt: Int) { Varint.encode(UInt64(field << 3 | wt), into: &bytes) }
    public mutating func uint64(_ field: Int, _ v: UInt64) { tag(field, 0); Varint.encode(v, into: &bytes) }
    public mutating func bool(_ field: Int, _ v: Bool) { uint64(field, v ? 1 : 0) }
    public mutating func bytes(_ field: Int, _ b: some Collection<UInt8>) {
        tag(field, 2); Varint.encode(UInt64(b.count), into: &bytes); bytes.append(contentsOf: b)
    }
    public mutating func string(_ field: Int, _ s: String) { bytes(field, Array(s.utf8)) }
    public mutating func message(_ field: Int, _ m: ProtobufWriter) { bytes(field, m.bytes) }
    public mutating func fixed64(_ field: Int, _ v: UInt64) {
        tag(field, 1); for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }
    public mutating func fixed32(_ field: Int, _ v: UInt32) {
        tag(field, 5); for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) }
    }
}
public enum ProtobufField: Sendable, Hashable {
    case varint(field: Int, value: UInt64)
    case fixed64(field: Int, value: UInt64)
    case bytes(field: Int, value: ArraySlice<UInt8>)
    case fixed32(field: Int, value: UInt32)
    public var field: Int {
        switch self {
        case .varint(let f, _), .fixed64(let f, _), .bytes(let f, _), .fixed32(let f, _): return f
        }
    }
}
public enum ProtobufError: Error, Hashable, Sendable { case truncated, badWireType(Int), badFieldNumber, varint(VarintError) }
public struct ProtobufReader: Sendable {
    var rest: ArraySlice<UInt8>
    public init(_ bytes: ArraySlice<UInt8>) { rest = bytes }
    mutating func varint() throws(ProtobufError) -> UInt64 {
        let r: (value: UInt64, length: Int)?
        do { r = try Varint.decode(rest) } catch { throw .varint(error) }
        guard let r else { throw .truncated }
        rest = rest.dropFirst(r.length)
        return r.value
    }
    public mutating func next() throws(ProtobufError) -> ProtobufField? {
        if rest.isEmpty { return nil }
        let key = try varint()
        let fieldNumber = key >> 3
        guard fieldNumber >= 1, fieldNumber <= 536_870_911 else { throw .badFieldNumber }
        let f = Int(fieldNumber)
        switch Int(key & 7) {
        case 0: return .varint(field: f, value: try varint())
        case 1:
            guard rest.count >= 8 else { throw .truncated }
            var v: UInt64 = 0
            for (i, b) in rest.prefix(8).enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
            rest = rest.dropFirst(8); return .fixed64(field: f, value: v)
        case 2:
            let n = try varint()
            guard n <= UInt64(rest.count) else { throw .truncated }
            let v = rest.prefix(Int(n)); rest = rest.dropFirst(Int(n)); return .bytes(field: f, value: v)
        case 5:
            guard rest.count >= 4 else { throw .truncated }
            var v: UInt32 = 0
            for (i, b) in rest.prefix(4).enumerated() { v |= UInt32(b) << (8 * UInt32(i)) }
            rest = rest.dropFirst(4); return .fixed32(field: f, value: v)
        case let wt: throw .badWireType(wt)
        }
    }
}

public enum PeerIdError: Error, Hashable, Sendable { case badMultihash, badBase58, badCID, badPublicKey, unsupportedKeyType }
public struct PeerId: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let multihash: [UInt8]
    public init(multihash: [UInt8]) throws(PeerIdError) {
        // identity (0x00, len <= 42) or sha2-256 (0x12, 0x20)
        guard multihash.count >= 2 else { throw .badMultihash }
        if multihash[0] == 0x00 {
            guard Int(multihash[1]) == multihash.count - 2, multihash.count - 2 <= 42 else { throw .badMultihash }
        } else if multihash[0] == 0x12 {
            guard multihash[1] == 0x20, multihash.count == 34 else { throw .badMultihash }
        } else { throw .badMultihash }
        self.multihash = multihash
    }
    public init(ed25519PublicKey: [UInt8]) {
        // PublicKey protobuf {Type=1 (Ed25519), Data=2} inlined with the identity multihash.
        multihash = [0x00, 36, 0x08, 0x01, 0x12, 0x20] + ed25519PublicKey
    }
    public static func < (a: PeerId, b: PeerId) -> Bool { a.multihash.lexicographicallyPrecedes(b.multihash) }
    public var description: String {
        let hex = "0123456789abcdef".map { $0 }
        return String(multihash.suffix(6).flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 15)]] })
    }
}

public enum SHA256 {
    static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]
    public static func hash(_ data: some Collection<UInt8>) -> [UInt8] {
        var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
        var msg = Array(data)
        let bitLen = UInt64(msg.count) * 8
        msg.append(0x80)
        while msg.count % 64 != 56 { msg.append(0) }
        for i in (0..<8).reversed() { msg.append(UInt8(truncatingIfNeeded: bitLen >> (8 * UInt64(i)))) }
        var w = [UInt32](repeating: 0, count: 64)
        for chunk in stride(from: 0, to: msg.count, by: 64) {
            for i in 0..<16 {
                let j = chunk + 4 * i
                w[i] = UInt32(msg[j]) << 24 | UInt32(msg[j + 1]) << 16 | UInt32(msg[j + 2]) << 8 | UInt32(msg[j + 3])
            }
            for i in 16..<64 {
                let s0 = w[i - 15].rotr(7) ^ w[i - 15].rotr(18) ^ (w[i - 15] >> 3)
                let s1 = w[i - 2].rotr(17) ^ w[i - 2].rotr(19) ^ (w[i - 2] >> 10)
                w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
            }
            var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7]
            for i in 0..<64 {
                let s1 = e.rotr(6) ^ e.rotr(11) ^ e.rotr(25)
                let ch = (e & f) ^ (~e & g)
                let t1 = hh &+ s1 &+ ch &+ k[i] &+ w[i]
                let s0 = a.rotr(2) ^ a.rotr(13) ^ a.rotr(22)
                let maj = (a & b) ^ (a & c) ^ (b & c)
                let t2 = s0 &+ maj
                hh = g; g = f; f = e; e = d &+ t1; d = c; c = b; b = a; a = t1 &+ t2
            }
            h[0] &+= a; h[1] &+= b; h[2] &+= c; h[3] &+= d; h[4] &+= e; h[5] &+= f; h[6] &+= g; h[7] &+= hh
        }
        return h.flatMap { v in [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)] }
    }
}
extension UInt32 { @inline(__always) fileprivate func rotr(_ n: UInt32) -> UInt32 { (self >> n) | (self << (32 - n)) } }
