import CSodium

/// An X25519 (RFC 7748) Diffie-Hellman key, used for the Noise handshake's ephemeral and static
/// keys. The 32-byte scalar lives in a `SecretBytes`, zeroed when the last copy goes; never printed.
public struct X25519PrivateKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public static let length = 32

    private let secret: SecretBytes
    /// The public key, X25519(scalar, 9).
    public let publicKey: [UInt8]

    public static func generate() -> X25519PrivateKey {
        var scalar = SecureRandom.bytes(length)
        defer { Sodium.zero(&scalar) }
        return X25519PrivateKey(validBytes: scalar)
    }

    /// The key for a 32-byte scalar (clamped by X25519 itself, as RFC 7748 says).
    public init(bytes: [UInt8]) throws(CryptoError) {
        guard bytes.count == Self.length else { throw .badKeyLength }
        self.init(validBytes: bytes)
    }

    private init(validBytes: [UInt8]) {
        Sodium.ensureInitialized()
        let secret = SecretBytes(copying: validBytes)
        var pk = [UInt8](repeating: 0, count: Self.length)
        let rc = secret.withUnsafeBytes { s in
            crypto_scalarmult_base(&pk, s.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        precondition(rc == 0, "crypto_scalarmult_base failed")
        self.secret = secret
        self.publicKey = pk
    }

    /// The raw scalar (a copy; for tests and for Noise's `DH` with a stored static key).
    public var bytes: [UInt8] { secret.array(0..<Self.length) }

    /// X25519(scalar, peerPublicKey). Throws `weakPublicKey` when the result is all zeros
    /// (the peer sent a small-order point), `badKeyLength` when the peer key is not 32 bytes.
    public func sharedSecret(with peerPublicKey: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard peerPublicKey.count == Self.length else { throw .badKeyLength }
        Sodium.ensureInitialized()
        var out = [UInt8](repeating: 0, count: Self.length)
        let rc = secret.withUnsafeBytes { s in
            crypto_scalarmult(&out, s.baseAddress!.assumingMemoryBound(to: UInt8.self), peerPublicKey)
        }
        // libsodium returns -1 exactly when the output is all zeros; check again so a different
        // build of the library cannot let a zero secret through.
        if rc != 0 || out.allSatisfy({ $0 == 0 }) { throw .weakPublicKey }
        return out
    }

    public var description: String { "X25519PrivateKey(<redacted>)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
