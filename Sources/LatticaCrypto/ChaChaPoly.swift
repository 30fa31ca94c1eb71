import CSodium

/// ChaCha20-Poly1305, IETF variant (RFC 8439): 32-byte key, 12-byte nonce, 16-byte tag appended to
/// the ciphertext. Noise's cipher functions (`/noise`, `ChaChaPoly`) use it with the nonce
/// encoding of `noiseNonce(_:)`.
///
/// Key and nonce lengths are programmer errors (precondition); a bad tag or a ciphertext shorter
/// than its tag is input from the network and throws `CryptoError.authenticationFailed`.
public enum ChaChaPoly {
    public static let keyLength = 32
    public static let nonceLength = 12
    public static let tagLength = 16

    /// Noise spec §12.3: 32 bits of zeros followed by the 64-bit counter, little-endian.
    public static func noiseNonce(_ n: UInt64) -> [UInt8] {
        var nonce = [UInt8](repeating: 0, count: nonceLength)
        for i in 0..<8 { nonce[4 + i] = UInt8(truncatingIfNeeded: n >> (8 * UInt64(i))) }
        return nonce
    }

    /// ciphertext || tag.
    public static func seal(key: [UInt8], nonce: [UInt8], plaintext: some Collection<UInt8>, ad: [UInt8]) -> [UInt8] {
        precondition(key.count == keyLength, "ChaChaPoly: key must be 32 bytes")
        precondition(nonce.count == nonceLength, "ChaChaPoly: nonce must be 12 bytes")
        Sodium.ensureInitialized()
        return withContiguousBytes(plaintext) { m in
            [UInt8](unsafeUninitializedCapacity: m.count + tagLength) { out, initialized in
                let rc = ad.withUnsafeBufferPointer { a in
                    crypto_aead_chacha20poly1305_ietf_encrypt_detached(
                        out.baseAddress!, out.baseAddress! + m.count, nil,
                        m.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(m.count),
                        a.baseAddress, UInt64(a.count), nil, nonce, key)
                }
                precondition(rc == 0, "crypto_aead_chacha20poly1305_ietf_encrypt_detached failed")
                initialized = m.count + tagLength
            }
        }
    }

    /// The plaintext of ciphertext || tag, or `authenticationFailed`.
    public static func open(key: [UInt8], nonce: [UInt8], ciphertext: some Collection<UInt8>, ad: [UInt8]) throws(CryptoError) -> [UInt8] {
        precondition(key.count == keyLength, "ChaChaPoly: key must be 32 bytes")
        precondition(nonce.count == nonceLength, "ChaChaPoly: nonce must be 12 bytes")
        Sodium.ensureInitialized()
        let result: [UInt8]? = withContiguousBytes(ciphertext) { c in
            guard c.count >= tagLength else { return nil }
            let mlen = c.count - tagLength
            var ok = false
            let plain = [UInt8](unsafeUninitializedCapacity: mlen) { out, initialized in
                let cp = c.baseAddress!.assumingMemoryBound(to: UInt8.self)
                let rc = ad.withUnsafeBufferPointer { a in
                    crypto_aead_chacha20poly1305_ietf_decrypt_detached(
                        out.baseAddress, nil, cp, UInt64(mlen), cp + mlen,
                        a.baseAddress, UInt64(a.count), nonce, key)
                }
                ok = rc == 0
                if !ok, let base = out.baseAddress { sodium_memzero(base, mlen) }
                initialized = mlen
            }
            return ok ? plain : nil
        }
        guard let result else { throw .authenticationFailed }
        return result
    }

    /// `seal` with a Noise counter nonce.
    public static func seal(key: [UInt8], nonce: UInt64, plaintext: some Collection<UInt8>, ad: [UInt8]) -> [UInt8] {
        seal(key: key, nonce: noiseNonce(nonce), plaintext: plaintext, ad: ad)
    }

    /// `open` with a Noise counter nonce.
    public static func open(key: [UInt8], nonce: UInt64, ciphertext: some Collection<UInt8>, ad: [UInt8]) throws(CryptoError) -> [UInt8] {
        try open(key: key, nonce: noiseNonce(nonce), ciphertext: ciphertext, ad: ad)
    }

    /// Hot path (Noise transport): encrypts the `count` bytes at `buffer` in place and writes the
    /// 16-byte tag right after them, so `buffer` must have room for `count + 16` bytes.
    /// The nonce is the Noise encoding of the counter `nonce`.
    public static func sealInPlace(
        key: UnsafeRawBufferPointer, nonce: UInt64, buffer: UnsafeMutableRawPointer, count: Int, ad: UnsafeRawBufferPointer
    ) {
        precondition(key.count == keyLength, "ChaChaPoly: key must be 32 bytes")
        precondition(count >= 0, "ChaChaPoly: negative count")
        Sodium.ensureInitialized()
        let p = buffer.assumingMemoryBound(to: UInt8.self)
        let rc = withNoiseNonce(nonce) { n in
            crypto_aead_chacha20poly1305_ietf_encrypt_detached(
                p, p + count, nil, p, UInt64(count),
                ad.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(ad.count), nil, n,
                key.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        precondition(rc == 0, "crypto_aead_chacha20poly1305_ietf_encrypt_detached failed")
    }

    /// Hot path: verifies and decrypts in place the `count` bytes at `buffer` (ciphertext and its
    /// 16-byte tag) and returns the plaintext length `count - 16`. On failure `authenticationFailed`
    /// is thrown and the first `count - 16` bytes are zeroed (libsodium checks the tag before
    /// decrypting and then clears the output), so no unauthenticated data is left to misuse.
    public static func openInPlace(
        key: UnsafeRawBufferPointer, nonce: UInt64, buffer: UnsafeMutableRawPointer, count: Int, ad: UnsafeRawBufferPointer
    ) throws(CryptoError) -> Int {
        try open(key: key, nonce: nonce, source: buffer, count: count, destination: buffer, ad: ad)
    }

    /// Hot path: verifies `count` bytes at `source` (ciphertext and its 16-byte tag) and decrypts
    /// them to `destination` (room for `count - 16` bytes; either `source` itself or a buffer that
    /// does not overlap it, as libsodium allows): out of place, the copy out of a read buffer and
    /// the decryption in one pass. Returns the plaintext length; on
    /// failure throws `authenticationFailed` and `destination` holds zeros.
    public static func open(
        key: UnsafeRawBufferPointer, nonce: UInt64, source: UnsafeRawPointer, count: Int,
        destination: UnsafeMutableRawPointer, ad: UnsafeRawBufferPointer
    ) throws(CryptoError) -> Int {
        precondition(key.count == keyLength, "ChaChaPoly: key must be 32 bytes")
        guard count >= tagLength else { throw .authenticationFailed }
        Sodium.ensureInitialized()
        let c = source.assumingMemoryBound(to: UInt8.self)
        let mlen = count - tagLength
        let rc = withNoiseNonce(nonce) { n in
            crypto_aead_chacha20poly1305_ietf_decrypt_detached(
                destination.assumingMemoryBound(to: UInt8.self), nil, c, UInt64(mlen), c + mlen,
                ad.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(ad.count), n,
                key.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        guard rc == 0 else { throw .authenticationFailed }
        return mlen
    }

    /// The Noise nonce on the stack (no allocation on the hot path): bytes 0..<4 zero,
    /// bytes 4..<12 the counter little-endian; the last 4 bytes of the 16-byte tuple are unused.
    @inline(__always)
    private static func withNoiseNonce<R>(_ n: UInt64, _ body: (UnsafePointer<UInt8>) -> R) -> R {
        var nonce: (UInt32, UInt32, UInt32, UInt32) =
            (0, UInt32(truncatingIfNeeded: n).littleEndian, UInt32(truncatingIfNeeded: n >> 32).littleEndian, 0)
        return withUnsafeBytes(of: &nonce) { raw in body(raw.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
    }
}
