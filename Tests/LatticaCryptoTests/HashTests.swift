import Testing
@testable import LatticaCrypto

@Suite struct SHA256Tests {
    // FIPS 180-4 / NIST CAVP examples.
    static let vectors: [(String, String)] = [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ]

    @Test func hash_matchesNISTVectors() {
        for (message, digest) in Self.vectors {
            #expect(SHA256.hash(bytes(message)) == hex(digest))
            #expect(SHA256.hash(bytes(message)[...]) == hex(digest))
        }
    }

    @Test func hasher_ofOneMillionAs_matchesNISTVectorInUnevenChunks() {
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 997)
        var hasher = SHA256.Hasher()
        var fed = 0
        while fed < 1_000_000 {
            let n = min(chunk.count - fed % 3, 1_000_000 - fed)
            hasher.update(chunk.prefix(n))
            fed += n
        }
        #expect(hasher.finalize() == hex("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"))
    }

    @Test func hasher_agreesWithOneShot_forNonContiguousInput() {
        let message = bytes(Self.vectors[2].0)
        var hasher = SHA256.Hasher()
        hasher.update(message.lazy.map { $0 }.prefix(10))   // not contiguous: goes through the copy path
        hasher.update(message.dropFirst(10))
        #expect(hasher.finalize() == SHA256.hash(message))
    }
}

@Suite struct HMACTests {
    // RFC 4231 test cases 1, 2, 3, 4, 6, 7 (HMAC-SHA-256 column).
    static let vectors: [(key: [UInt8], data: [UInt8], mac: String)] = [
        ([UInt8](repeating: 0x0b, count: 20), bytes("Hi There"),
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (bytes("Jefe"), bytes("what do ya want for nothing?"),
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        ([UInt8](repeating: 0xaa, count: 20), [UInt8](repeating: 0xdd, count: 50),
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        (hex("0102030405060708090a0b0c0d0e0f10111213141516171819"), [UInt8](repeating: 0xcd, count: 50),
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        ([UInt8](repeating: 0xaa, count: 131), bytes("Test Using Larger Than Block-Size Key - Hash Key First"),
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        ([UInt8](repeating: 0xaa, count: 131),
         bytes("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."),
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    ]

    @Test func authenticate_matchesRFC4231Vectors() {
        for v in Self.vectors {
            #expect(HMACSHA256.authenticate(key: v.key, message: v.data) == hex(v.mac))
            #expect(HMACSHA256.isValid(tag: hex(v.mac), key: v.key, message: v.data))
            var bad = hex(v.mac)
            bad[31] ^= 1
            #expect(!HMACSHA256.isValid(tag: bad, key: v.key, message: v.data))
        }
    }

    @Test func emptyKey_equalsAllZeroBlockKey() {
        // HMAC pads keys with zeros, so the empty key and 32 zero bytes are the same key.
        #expect(HMACSHA256.authenticate(key: [], message: bytes("x"))
            == HMACSHA256.authenticate(key: [UInt8](repeating: 0, count: 32), message: bytes("x")))
        #expect(HMACSHA256.authenticate(key: [], message: bytes("x"))
            != HMACSHA256.authenticate(key: [1], message: bytes("x")))
    }
}

@Suite struct HKDFTests {
    @Test func sha256_matchesRFC5869TestCase1() {
        let ikm = [UInt8](repeating: 0x0b, count: 22)
        let salt = hex("000102030405060708090a0b0c")
        let info = hex("f0f1f2f3f4f5f6f7f8f9")
        #expect(HKDF.extract(salt: salt, inputKeyMaterial: ikm)
            == hex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"))
        #expect(HKDF.sha256(inputKeyMaterial: ikm, salt: salt, info: info, length: 42)
            == hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"))
    }

    @Test func sha256_matchesRFC5869TestCase2WithLongInputs() {
        let ikm = (UInt8(0x00)...0x4f).map { $0 }
        let salt = (UInt8(0x60)...0xaf).map { $0 }
        let info = (UInt8(0xb0)...0xff).map { $0 }
        #expect(HKDF.sha256(inputKeyMaterial: ikm, salt: salt, info: info, length: 82) == hex("""
            b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09
            da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87
            """))
    }

    @Test func sha256_matchesRFC5869TestCase3WithEmptySaltAndInfo() {
        #expect(HKDF.sha256(inputKeyMaterial: [UInt8](repeating: 0x0b, count: 22), salt: [], info: [], length: 42)
            == hex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"))
    }

    @Test func noise_matchesItsDefinitionAndRFC5869WithEmptyInfo() {
        let ck = SHA256.hash(bytes("Noise_XX_25519_ChaChaPoly_SHA256"))
        let ikm = SecureRandom.bytes(32)
        for n in [2, 3] {
            let out = HKDF.noise(chainingKey: ck, inputKeyMaterial: ikm, outputs: n)
            #expect(out.count == n && out.allSatisfy { $0.count == 32 })
            // Definition, Noise spec §4.3.
            let temp = HMACSHA256.authenticate(key: ck, message: ikm)
            let o1 = HMACSHA256.authenticate(key: temp, message: [0x01])
            let o2 = HMACSHA256.authenticate(key: temp, message: o1 + [0x02])
            #expect(out[0] == o1 && out[1] == o2)
            if n == 3 { #expect(out[2] == HMACSHA256.authenticate(key: temp, message: o2 + [0x03])) }
            // Noise HKDF is RFC 5869 with salt = ck and empty info.
            #expect(out.flatMap { $0 } == HKDF.sha256(inputKeyMaterial: ikm, salt: ck, info: [], length: 32 * n))
        }
        // Empty input key material (Noise Split()).
        let split = HKDF.noise(chainingKey: ck, inputKeyMaterial: [], outputs: 2)
        #expect(split[0] != split[1])
        #expect(split.flatMap { $0 } == HKDF.sha256(inputKeyMaterial: [], salt: ck, info: [], length: 64))
    }
}

@Suite struct SecureRandomTests {
    @Test func bytes_areFreshAndFillCoversTheBuffer() {
        #expect(SecureRandom.bytes(0).isEmpty)
        let a = SecureRandom.bytes(32), b = SecureRandom.bytes(32)
        #expect(a.count == 32 && a != b)
        var buffer = [UInt8](repeating: 0, count: 4096)
        buffer.withUnsafeMutableBytes { SecureRandom.fill($0) }
        // 4096 random bytes take every value of the low nibble: a zeroed tail would not.
        #expect(Set(buffer.suffix(256).map { $0 & 0x0f }).count == 16)
        #expect(SecureRandom.uint64() != SecureRandom.uint64())
    }
}
