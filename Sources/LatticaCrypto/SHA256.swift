import CSodium

/// SHA-256 (FIPS 180-4): Noise's hash, PeerId multihashes, model chunk hashes.
public enum SHA256 {
    public static let digestLength = 32

    public static func hash(_ data: some Collection<UInt8>) -> [UInt8] {
        Sodium.ensureInitialized()
        return withContiguousBytes(data) { m in
            [UInt8](unsafeUninitializedCapacity: digestLength) { out, initialized in
                crypto_hash_sha256(out.baseAddress!, m.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(m.count))
                initialized = digestLength
            }
        }
    }

    /// Incremental hashing: `update` any number of times, then `finalize` once.
    public struct Hasher: Sendable {
        private var state = crypto_hash_sha256_state()

        public init() {
            Sodium.ensureInitialized()
            crypto_hash_sha256_init(&state)
        }

        public mutating func update(_ data: some Collection<UInt8>) {
            withContiguousBytes(data) { m in update(raw: m) }
        }

        public mutating func update(raw m: UnsafeRawBufferPointer) {
            crypto_hash_sha256_update(&state, m.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(m.count))
        }

        /// The digest. The hasher must not be used afterwards (start a new one).
        public mutating func finalize() -> [UInt8] {
            var out = [UInt8](repeating: 0, count: SHA256.digestLength)
            crypto_hash_sha256_final(&state, &out)
            return out
        }
    }
}

/// HMAC-SHA256 (RFC 2104) with keys of any length: Noise's HKDF, RFC 5869 HKDF.
public enum HMACSHA256 {
    public static let length = 32

    public static func authenticate(key: [UInt8], message: some Collection<UInt8>) -> [UInt8] {
        var mac = Authenticator(key: key)
        mac.update(message)
        return mac.finalize()
    }

    /// Constant-time check of a 32-byte tag.
    public static func isValid(tag: [UInt8], key: [UInt8], message: some Collection<UInt8>) -> Bool {
        Sodium.constantTimeEquals(authenticate(key: key, message: message), tag)
    }

    /// Incremental HMAC (`crypto_auth_hmacsha256_init/update/final`); the state is zeroed by
    /// libsodium in `finalize`.
    public struct Authenticator: Sendable {
        private var state = crypto_auth_hmacsha256_state()

        public init(key: [UInt8]) {
            Sodium.ensureInitialized()
            // libsodium wants a non-null pointer even for an empty key.
            let k = key.isEmpty ? [0] : key
            k.withUnsafeBufferPointer { p in _ = crypto_auth_hmacsha256_init(&state, p.baseAddress!, key.count) }
        }

        public mutating func update(_ data: some Collection<UInt8>) {
            withContiguousBytes(data) { m in
                _ = crypto_auth_hmacsha256_update(&state, m.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(m.count))
            }
        }

        public mutating func finalize() -> [UInt8] {
            var out = [UInt8](repeating: 0, count: HMACSHA256.length)
            crypto_auth_hmacsha256_final(&state, &out)
            return out
        }
    }
}

/// HKDF with HMAC-SHA256.
public enum HKDF {
    /// Noise HKDF (Noise spec §4.3): temp = HMAC(ck, ikm); out1 = HMAC(temp, 0x01);
    /// out2 = HMAC(temp, out1 || 0x02); out3 = HMAC(temp, out2 || 0x03). 2 or 3 outputs of 32 bytes.
    public static func noise(chainingKey: [UInt8], inputKeyMaterial: [UInt8], outputs: Int) -> [[UInt8]] {
        precondition(outputs == 2 || outputs == 3, "Noise HKDF: 2 or 3 outputs")
        var tempKey = HMACSHA256.authenticate(key: chainingKey, message: inputKeyMaterial)
        defer { Sodium.zero(&tempKey) }
        var result: [[UInt8]] = []
        result.reserveCapacity(outputs)
        var previous: [UInt8] = []
        for i in 1...outputs {
            var mac = HMACSHA256.Authenticator(key: tempKey)
            mac.update(previous)
            mac.update(CollectionOfOne(UInt8(i)))
            previous = mac.finalize()
            result.append(previous)
        }
        return result
    }

    /// RFC 5869 extract-then-expand. An empty salt means 32 zero bytes (§2.2). `length` <= 8160.
    public static func sha256(inputKeyMaterial: [UInt8], salt: [UInt8], info: [UInt8], length: Int) -> [UInt8] {
        var prk = extract(salt: salt, inputKeyMaterial: inputKeyMaterial)
        defer { Sodium.zero(&prk) }
        return expand(pseudoRandomKey: prk, info: info, length: length)
    }

    /// RFC 5869 §2.2: PRK = HMAC(salt, IKM).
    public static func extract(salt: [UInt8], inputKeyMaterial: [UInt8]) -> [UInt8] {
        HMACSHA256.authenticate(key: salt.isEmpty ? [UInt8](repeating: 0, count: 32) : salt, message: inputKeyMaterial)
    }

    /// RFC 5869 §2.3: T(i) = HMAC(PRK, T(i-1) || info || i), output = first `length` bytes.
    public static func expand(pseudoRandomKey prk: [UInt8], info: [UInt8], length: Int) -> [UInt8] {
        precondition(length >= 0 && length <= 255 * HMACSHA256.length, "HKDF: length must be 0...8160")
        var okm: [UInt8] = []
        okm.reserveCapacity(length)
        var t: [UInt8] = []
        var counter: UInt8 = 1
        while okm.count < length {
            var mac = HMACSHA256.Authenticator(key: prk)
            mac.update(t)
            mac.update(info)
            mac.update(CollectionOfOne(counter))
            t = mac.finalize()
            okm.append(contentsOf: t.prefix(length - okm.count))
            counter &+= 1
        }
        Sodium.zero(&t)
        return okm
    }
}
