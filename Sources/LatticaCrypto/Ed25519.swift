import CSodium
public import LatticaCore

/// An Ed25519 signing key (RFC 8032), the node identity. The secret lives in a `SecretBytes`
/// (seed || public key, libsodium's 64-byte layout) that is zeroed when the last copy goes.
/// `description`, `debugDescription` and the reflection mirror never show the secret.
public struct Ed25519PrivateKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public static let seedLength = 32
    public static let signatureLength = 64

    /// seed (32) || public key (32), as `crypto_sign_seed_keypair` writes it.
    private let secret: SecretBytes

    /// A fresh key from the operating system's random source.
    public static func generate() -> Ed25519PrivateKey {
        Sodium.ensureInitialized()
        var seed = SecureRandom.bytes(seedLength)
        defer { Sodium.zero(&seed) }
        return Ed25519PrivateKey(validSeed: seed)
    }

    /// The key for a 32-byte seed (RFC 8032 "private key").
    public init(seed: [UInt8]) throws(CryptoError) {
        guard seed.count == Self.seedLength else { throw .badKeyLength }
        self.init(validSeed: seed)
    }

    private init(validSeed seed: [UInt8]) {
        Sodium.ensureInitialized()
        secret = SecretBytes(count: Int(crypto_sign_SECRETKEYBYTES)) { sk in
            var pk = [UInt8](repeating: 0, count: Int(crypto_sign_PUBLICKEYBYTES))
            let rc = seed.withUnsafeBufferPointer { s in
                crypto_sign_seed_keypair(&pk, sk.baseAddress!.assumingMemoryBound(to: UInt8.self), s.baseAddress!)
            }
            precondition(rc == 0, "crypto_sign_seed_keypair failed")
        }
    }

    /// The 32-byte seed (a copy: the caller owns it and should not keep it around).
    public var seed: [UInt8] { secret.array(0..<32) }

    public var publicKey: Ed25519PublicKey {
        Ed25519PublicKey(validBytes: secret.array(32..<64))
    }

    /// The 64-byte detached signature of `message` (deterministic, RFC 8032).
    public func sign(_ message: some Collection<UInt8>) -> [UInt8] {
        withContiguousBytes(message) { m in sign(raw: m) }
    }

    /// `sign` for a raw buffer.
    public func sign(raw m: UnsafeRawBufferPointer) -> [UInt8] {
        Sodium.ensureInitialized()
        var sig = [UInt8](repeating: 0, count: Self.signatureLength)
        let rc = secret.withUnsafeBytes { sk in
            crypto_sign_detached(
                &sig, nil, m.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(m.count),
                sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        precondition(rc == 0, "crypto_sign_detached failed")
        return sig
    }

    /// True when both keys have the same seed (constant time).
    public func hasSameSecret(as other: Ed25519PrivateKey) -> Bool {
        secret.withUnsafeBytes { a in
            other.secret.withUnsafeBytes { b in sodium_memcmp(a.baseAddress!, b.baseAddress!, 64) == 0 }
        }
    }

    public var description: String { "Ed25519PrivateKey(<redacted>, public: \(publicKey.hex))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}

/// An Ed25519 public key: 32 bytes, compared by value. Signature verification uses libsodium's
/// strict rules (canonical encodings, small-order keys and signatures rejected).
public struct Ed25519PublicKey: Hashable, Sendable, CustomStringConvertible {
    public static let length = 32
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws(CryptoError) {
        guard bytes.count == Self.length else { throw .badKeyLength }
        self.bytes = bytes
    }

    init(validBytes: [UInt8]) { bytes = validBytes }

    public func isValidSignature(_ sig: some Collection<UInt8>, for message: some Collection<UInt8>) -> Bool {
        let signature = Array(sig)
        guard signature.count == Ed25519PrivateKey.signatureLength else { return false }
        return withContiguousBytes(message) { m in isValidSignature(signature, raw: m) }
    }

    /// `isValidSignature` for a raw message buffer.
    public func isValidSignature(_ signature: [UInt8], raw m: UnsafeRawBufferPointer) -> Bool {
        guard signature.count == Ed25519PrivateKey.signatureLength else { return false }
        Sodium.ensureInitialized()
        return crypto_sign_verify_detached(
            signature, m.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(m.count), bytes) == 0
    }

    /// The libp2p PeerId of this key (identity multihash of the protobuf public key).
    public var peerId: PeerId { PeerId(ed25519PublicKey: bytes) }

    /// The libp2p `crypto.pb` PublicKey message (Type = Ed25519, Data = 32 bytes).
    public var protobuf: PublicKeyProto { PublicKeyProto(type: .ed25519, data: bytes) }

    /// From a libp2p PublicKey message; other key types throw `unsupportedKeyType`.
    public init(protobuf: PublicKeyProto) throws(CryptoError) {
        guard protobuf.type == .ed25519 else { throw .unsupportedKeyType }
        try self.init(bytes: protobuf.data)
    }

    /// From protobuf-encoded PublicKey bytes (e.g. a Noise handshake payload's `identity_key`).
    public init(protobufEncoded bytes: some Collection<UInt8>) throws(CryptoError) {
        let proto: PublicKeyProto
        do { proto = try PublicKeyProto(decoding: ArraySlice(bytes)) } catch {
            throw error == .unsupportedKeyType ? .unsupportedKeyType : .badPublicKey
        }
        try self.init(protobuf: proto)
    }

    var hex: String { bytes.map { String($0, radix: 16).leftPadded(2) }.joined() }
    public var description: String { "Ed25519PublicKey(\(hex))" }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
