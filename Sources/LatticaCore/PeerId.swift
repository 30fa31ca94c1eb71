/// Key types of libp2p `crypto.pb` (https://github.com/libp2p/specs/blob/master/peer-ids/peer-ids.md).
public enum KeyType: UInt64, Sendable {
    case rsa = 0, ed25519 = 1, secp256k1 = 2, ecdsa = 3
}

/// libp2p `PublicKey { required KeyType Type = 1; required bytes Data = 2; }`, encoded canonically
/// (Type first, then Data) because peer ids hash these exact bytes.
public struct PublicKeyProto: Hashable, Sendable {
    public var type: KeyType
    public var data: [UInt8]

    public init(type: KeyType, data: [UInt8]) {
        self.type = type
        self.data = data
    }

    public func encoded() -> [UInt8] {
        var w = ProtobufWriter()
        w.uint64(1, type.rawValue)
        w.bytes(2, data)
        return w.bytes
    }

    /// Both fields are required; unknown fields are rejected (the bytes are identity-bearing).
    /// Ed25519 keys must be 32 bytes.
    public init(decoding bytes: ArraySlice<UInt8>) throws(PeerIdError) {
        var reader = ProtobufReader(bytes)
        var type: UInt64?
        var data: ArraySlice<UInt8>?
        while true {
            let field: ProtobufField?
            do { field = try reader.next() } catch { throw .badPublicKey }
            guard let field else { break }
            switch field {
            case .varint(1, let v): type = v
            case .bytes(2, let b): data = b
            default: throw .badPublicKey
            }
        }
        guard let type, let data else { throw .badPublicKey }
        guard let keyType = KeyType(rawValue: type) else { throw .unsupportedKeyType }
        if keyType == .ed25519 && data.count != 32 { throw .badPublicKey }
        self.init(type: keyType, data: Array(data))
    }
}

public enum PeerIdError: Error, Hashable, Sendable {
    case badMultihash, badBase58, badCID, badPublicKey, unsupportedKeyType
}

/// Multihash codes used for peer ids (https://github.com/multiformats/multicodec/blob/master/table.csv).
public enum Multihash {
    public static let identity: UInt64 = 0x00
    public static let sha2_256: UInt64 = 0x12
    /// Identity-multihashed keys longer than this are rejected when parsing (rust-libp2p uses 64).
    public static let maxIdentityDigest = 64

    /// `<varint code><varint length><digest>`.
    public static func encode(code: UInt64, digest: some Collection<UInt8>) -> [UInt8] {
        var out = Varint.encoded(code)
        Varint.encode(UInt64(digest.count), into: &out)
        out.append(contentsOf: digest)
        return out
    }

    /// Splits a multihash into code and digest; `nil` unless `bytes` is exactly one well-formed
    /// multihash (minimal varints, digest length matching, no trailing bytes).
    public static func decode(_ bytes: ArraySlice<UInt8>) -> (code: UInt64, digest: ArraySlice<UInt8>)? {
        guard let (code, n1) = try? Varint.decode(bytes) else { return nil }
        let rest = bytes.dropFirst(n1)
        guard let (length, n2) = try? Varint.decode(rest) else { return nil }
        let digest = rest.dropFirst(n2)
        guard UInt64(digest.count) == length else { return nil }
        return (code, digest)
    }
}

/// A libp2p peer id: the multihash of the protobuf-encoded public key — identity multihash when the
/// encoding is at most 42 bytes (Ed25519: `00 24 08 01 12 20 <32-byte key>`), sha2-256 otherwise.
/// Text form: base58btc of the multihash ("12D3KooW…" for Ed25519, "Qm…" for sha2-256), or
/// CIDv1 (`b` + base32 of `01 72 <multihash>`).
public struct PeerId: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let multihash: [UInt8]

    /// Accepts identity multihashes (digest <= 64 bytes that decodes as a `PublicKeyProto`) and
    /// sha2-256 multihashes (32-byte digest).
    public init(multihash: [UInt8]) throws(PeerIdError) {
        guard let (code, digest) = Multihash.decode(multihash[...]) else { throw .badMultihash }
        switch code {
        case Multihash.identity:
            guard digest.count <= Multihash.maxIdentityDigest else { throw .badMultihash }
            _ = try PublicKeyProto(decoding: digest)
        case Multihash.sha2_256:
            guard digest.count == 32 else { throw .badMultihash }
        default:
            throw .badMultihash
        }
        self.multihash = multihash
    }

    public init(publicKey: PublicKeyProto) {
        let encoded = publicKey.encoded()
        if encoded.count <= 42 {
            multihash = Multihash.encode(code: Multihash.identity, digest: encoded)
        } else {
            multihash = Multihash.encode(code: Multihash.sha2_256, digest: PureSHA256.hash(encoded))
        }
    }

    /// From a raw 32-byte Ed25519 public key.
    public init(ed25519PublicKey: [UInt8]) {
        precondition(ed25519PublicKey.count == 32, "Ed25519 public keys are 32 bytes")
        self.init(publicKey: PublicKeyProto(type: .ed25519, data: ed25519PublicKey))
    }

    /// Strings longer than this are rejected before decoding (base58 decoding is quadratic).
    public static let maxStringLength = 256

    /// Parses a base58btc multihash (starts with "1" or "Qm", per the spec) or a CIDv1 in
    /// multibase base32 (`b…`) with codec libp2p-key (0x72).
    public init(string: String) throws(PeerIdError) {
        guard string.utf8.count <= Self.maxStringLength, let first = string.utf8.first else { throw .badBase58 }
        if first == UInt8(ascii: "1") || string.utf8.starts(with: "Qm".utf8) {
            guard let bytes = Base58.decode(string) else { throw .badBase58 }
            try self.init(multihash: bytes)
            return
        }
        guard first == UInt8(ascii: "b"), let bytes = Base32.decode(string.dropFirst()) else { throw .badCID }
        let all = bytes[...]
        guard let (version, n1) = try? Varint.decode(all), version == 1 else { throw .badCID }
        guard let (codec, n2) = try? Varint.decode(all.dropFirst(n1)), codec == 0x72 else { throw .badCID }
        try self.init(multihash: Array(all.dropFirst(n1 + n2)))
    }

    /// The public key when it is inlined (identity multihash); `nil` for hashed keys.
    public var publicKey: PublicKeyProto? {
        guard let (code, digest) = Multihash.decode(multihash[...]), code == Multihash.identity else { return nil }
        return try? PublicKeyProto(decoding: digest)
    }

    /// base58btc of the multihash.
    public var description: String { Base58.encode(multihash) }

    /// CIDv1, multibase base32 lower: "b" + base32(0x01 0x72 multihash).
    public var cidString: String { "b" + Base32.encode([0x01, 0x72] + multihash) }

    /// Lexicographic on the multihash bytes.
    public static func < (a: PeerId, b: PeerId) -> Bool { a.multihash.lexicographicallyPrecedes(b.multihash) }
}
