import LatticaCore
import Testing
@testable import LatticaCrypto

@Suite struct ChaChaPolyTests {
    // RFC 8439 §2.8.2.
    static let key = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
    static let nonce = hex("070000004041424344454647")
    static let ad = hex("50515253c0c1c2c3c4c5c6c7")
    static let plaintext = bytes(
        "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")
    static let ciphertext = hex("""
        d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b
        1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
        3ff4def08e4b7a9de576d26586cec64b6116
        """)
    static let tag = hex("1ae10b594f09e26a7e902ecbd0600691")

    @Test func seal_matchesRFC8439AEADVector() throws {
        let sealed = ChaChaPoly.seal(key: Self.key, nonce: Self.nonce, plaintext: Self.plaintext, ad: Self.ad)
        #expect(sealed == Self.ciphertext + Self.tag)
        #expect(try ChaChaPoly.open(key: Self.key, nonce: Self.nonce, ciphertext: sealed, ad: Self.ad) == Self.plaintext)
    }

    @Test func open_failsOnAnyFlippedBitInCiphertextTagOrAD() {
        let sealed = Self.ciphertext + Self.tag
        for bit in stride(from: 0, to: sealed.count * 8, by: 13) {
            var bad = sealed
            bad[bit / 8] ^= 1 << UInt8(bit % 8)
            #expect(throws: CryptoError.authenticationFailed) {
                try ChaChaPoly.open(key: Self.key, nonce: Self.nonce, ciphertext: bad, ad: Self.ad)
            }
        }
        for i in Self.ad.indices {
            var badAD = Self.ad
            badAD[i] ^= 0x80
            #expect(throws: CryptoError.authenticationFailed) {
                try ChaChaPoly.open(key: Self.key, nonce: Self.nonce, ciphertext: sealed, ad: badAD)
            }
        }
        var badNonce = Self.nonce
        badNonce[11] ^= 1
        #expect(throws: CryptoError.authenticationFailed) {
            try ChaChaPoly.open(key: Self.key, nonce: badNonce, ciphertext: sealed, ad: Self.ad)
        }
        #expect(throws: CryptoError.authenticationFailed) {
            try ChaChaPoly.open(key: Self.key, nonce: Self.nonce, ciphertext: Self.tag.dropLast(), ad: Self.ad)
        }
    }

    @Test func noiseNonce_isFourZerosThenLittleEndianCounter() {
        #expect(ChaChaPoly.noiseNonce(0) == [UInt8](repeating: 0, count: 12))
        #expect(ChaChaPoly.noiseNonce(0x0102_0304_0506_0708) == [0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1])
        // A counter whose little-endian bytes are 40..47 (the tail of the RFC 8439 nonce).
        let n: UInt64 = 0x4746_4544_4342_4140
        #expect(ChaChaPoly.noiseNonce(n) == hex("000000004041424344454647"))
    }

    @Test(arguments: [0, 1, 15, 16, 17, 63, 64, 1000, 65536])
    func inPlace_agreesWithArrayVariants(length: Int) throws {
        var rng = SeededRandom(seed: 0xC4AC4A + UInt64(length))  // fixed: a failure replays
        let key = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let ad = (0..<(length % 7)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let plain = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let counter = UInt64.random(in: 0...UInt64.max, using: &rng)
        let expected = ChaChaPoly.seal(key: key, nonce: counter, plaintext: plain, ad: ad)

        var buffer = plain + [UInt8](repeating: 0, count: ChaChaPoly.tagLength)
        key.withUnsafeBytes { k in
            ad.withUnsafeBytes { a in
                buffer.withUnsafeMutableBytes { b in
                    ChaChaPoly.sealInPlace(key: k, nonce: counter, buffer: b.baseAddress!, count: length, ad: a)
                }
            }
        }
        #expect(buffer == expected)

        let opened = try key.withUnsafeBytes { k in
            try ad.withUnsafeBytes { a in
                try buffer.withUnsafeMutableBytes { b throws(CryptoError) in
                    try ChaChaPoly.openInPlace(key: k, nonce: counter, buffer: b.baseAddress!, count: b.count, ad: a)
                }
            }
        }
        #expect(opened == length)
        #expect(Array(buffer.prefix(length)) == plain)
        #expect(try ChaChaPoly.open(key: key, nonce: counter, ciphertext: expected, ad: ad) == plain)
    }

    @Test func openInPlace_rejectsTamperingAndZeroesThePlaintextRegion() throws {
        var rng = SeededRandom(seed: 0xC4A_7A3)  // fixed: a failure replays
        let key = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let sealed = ChaChaPoly.seal(key: key, nonce: 7, plaintext: bytes("attack at dawn"), ad: [])
        for i in sealed.indices {
            var buffer = sealed
            buffer[i] ^= 0x10
            let tampered = buffer
            let result: Result<Int, CryptoError> = key.withUnsafeBytes { k in
                buffer.withUnsafeMutableBytes { b in
                    Result { () throws(CryptoError) in
                        try ChaChaPoly.openInPlace(key: k, nonce: 7, buffer: b.baseAddress!, count: b.count, ad: UnsafeRawBufferPointer(start: nil, count: 0))
                    }
                }
            }
            #expect(result == .failure(.authenticationFailed))
            #expect(buffer.prefix(sealed.count - 16).allSatisfy { $0 == 0 })
            #expect(buffer.suffix(16) == tampered.suffix(16))
        }
        // Wrong counter fails too, and a buffer shorter than a tag is rejected, not read past.
        var buffer = sealed
        let wrongNonce: Result<Int, CryptoError> = key.withUnsafeBytes { k in
            buffer.withUnsafeMutableBytes { b in
                Result { () throws(CryptoError) in
                    try ChaChaPoly.openInPlace(key: k, nonce: 8, buffer: b.baseAddress!, count: b.count, ad: UnsafeRawBufferPointer(start: nil, count: 0))
                }
            }
        }
        #expect(wrongNonce == .failure(.authenticationFailed))
        let short: Result<Int, CryptoError> = key.withUnsafeBytes { k in
            buffer.withUnsafeMutableBytes { b in
                Result { () throws(CryptoError) in
                    try ChaChaPoly.openInPlace(key: k, nonce: 7, buffer: b.baseAddress!, count: 15, ad: UnsafeRawBufferPointer(start: nil, count: 0))
                }
            }
        }
        #expect(short == .failure(.authenticationFailed))
    }
}
