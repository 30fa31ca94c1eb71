import CSodium

/// libsodium initialisation. Every public entry point of LatticaCrypto calls `ensureInitialized()`
/// first, so callers never have to; calling it again is free (a one-time lazy global).
public enum Sodium {
    /// `sodium_init()` is itself thread-safe and idempotent; the lazy global makes repeated calls
    /// a single atomic load. A failure (no entropy source at all) leaves nothing safe to do.
    private static let initialized: Bool = {
        guard sodium_init() >= 0 else { fatalError("libsodium: sodium_init() failed (no entropy source)") }
        return true
    }()

    public static func ensureInitialized() {
        _ = initialized
    }

    /// Constant-time comparison of two byte strings (`sodium_memcmp`); different lengths compare unequal.
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        ensureInitialized()
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return a.withUnsafeBytes { pa in
            b.withUnsafeBytes { pb in sodium_memcmp(pa.baseAddress!, pb.baseAddress!, a.count) == 0 }
        }
    }

    /// Overwrites `bytes` with zeros in a way the optimiser cannot remove (`sodium_memzero`).
    /// Best effort for Swift arrays: copies made earlier (copy-on-write) are not reached.
    public static func zero(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { p in
            if let base = p.baseAddress { sodium_memzero(base, p.count) }
        }
    }
}

/// Errors of the primitives. Key-length errors are caller mistakes; `authenticationFailed`,
/// `badSignature` and `weakPublicKey` are what untrusted input produces.
public enum CryptoError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A key, seed or nonce had the wrong number of bytes.
    case badKeyLength
    /// A signature did not verify (or was not 64 bytes).
    case badSignature
    /// An AEAD tag did not verify (tampered ciphertext, tag, associated data, or wrong key/nonce).
    case authenticationFailed
    /// An X25519 peer key of small order: the shared secret would be all zeros.
    case weakPublicKey
    /// A public key message that does not decode (libp2p `crypto.pb` PublicKey).
    case badPublicKey
    /// A well-formed public key of a type we do not support (only Ed25519).
    case unsupportedKeyType
    /// A buffer was too short to hold what it must (e.g. a ciphertext shorter than its tag).
    case bufferTooShort

    public var description: String {
        switch self {
        case .badKeyLength: "key has the wrong length"
        case .badSignature: "signature verification failed"
        case .authenticationFailed: "message authentication failed"
        case .weakPublicKey: "peer public key has small order (all-zero shared secret)"
        case .badPublicKey: "malformed public key"
        case .unsupportedKeyType: "unsupported key type (only Ed25519)"
        case .bufferTooShort: "buffer too short"
        }
    }
}

/// Cryptographically secure random bytes from the operating system (`randombytes_buf`).
/// Only for key material and nonces; protocol logic uses `SeededRandom` so it replays.
public enum SecureRandom {
    public static func bytes(_ count: Int) -> [UInt8] {
        precondition(count >= 0, "SecureRandom.bytes: negative count")
        Sodium.ensureInitialized()
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            if let base = buffer.baseAddress { randombytes_buf(base, count) }
            initialized = count
        }
    }

    public static func fill(_ p: UnsafeMutableRawBufferPointer) {
        Sodium.ensureInitialized()
        if let base = p.baseAddress { randombytes_buf(base, p.count) }
    }

    /// A uniformly random 64-bit value, e.g. to seed a `SeededRandom` for a real (non-simulated) node.
    public static func uint64() -> UInt64 {
        var value: UInt64 = 0
        withUnsafeMutableBytes(of: &value) { fill($0) }
        return value
    }
}

/// Fixed-size secret bytes in memory that the key structs share (copy = retain, not a copy of the
/// secret), zeroed with `sodium_memzero` when the last reference goes. Immutable after `init`.
final class SecretBytes: @unchecked Sendable {
    // @unchecked: the buffer is written only inside init and read-only afterwards.
    private let storage: UnsafeMutableRawBufferPointer

    /// Allocates `count` bytes and lets `initialize` fill them.
    init(count: Int, _ initialize: (UnsafeMutableRawBufferPointer) -> Void) {
        storage = .allocate(byteCount: count, alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        initialize(storage)
    }

    convenience init(copying bytes: some Collection<UInt8>) {
        self.init(count: bytes.count) { p in _ = p.initializeMemory(as: UInt8.self, from: bytes) }
    }

    deinit {
        if let base = storage.baseAddress { sodium_memzero(base, storage.count) }
        storage.deallocate()
    }

    var count: Int { storage.count }

    func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(storage))
    }

    /// A copy as an array (the caller then owns a secret copy; see `Sodium.zero`).
    func array(_ range: Range<Int>) -> [UInt8] {
        Array(UnsafeRawBufferPointer(rebasing: storage[range]))
    }
}

/// Runs `body` with a contiguous view of `data`, copying only when it is not contiguous already.
@inline(__always)
func withContiguousBytes<R>(_ data: some Collection<UInt8>, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    if let r = data.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) { return r }
    return Array(data).withUnsafeBytes(body)
}
