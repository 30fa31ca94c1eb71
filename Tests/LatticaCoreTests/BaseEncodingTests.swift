import Testing
@testable import LatticaCore

@Suite struct BaseEncodingTests {
    @Test func sha256_matchesNISTVectors() {
        #expect(toHex(PureSHA256.hash([UInt8]())) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(toHex(PureSHA256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(toHex(PureSHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(toHex(PureSHA256.hash(Array(("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
            + "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu").utf8)))
            == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        var h = PureSHA256()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { h.update(chunk) }
        #expect(toHex(h.finalize()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func sha256_incrementalEqualsOneShot_atEveryBlockBoundary() {
        var rng = SeededRandom(seed: 5)
        for n in [55, 56, 63, 64, 65, 119, 120, 128] {
            let data = rng.bytes(n)
            var h = PureSHA256()
            h.update(data.prefix(n / 3)); h.update(data.dropFirst(n / 3))
            #expect(h.finalize() == PureSHA256.hash(data))
        }
    }

    @Test func base58_matchesDraftSpecVectors() {
        // draft-msporny-base58 test vectors.
        #expect(Base58.encode(Array("Hello World!".utf8)) == "2NEpo7TZRRrLZSi2U")
        #expect(Base58.encode(Array("The quick brown fox jumps over the lazy dog.".utf8))
            == "USm3fpXnKG5EUBx2ndxBDMPVciP5hGey2Jh4NDv6gmeo1LkMeiKrLJUUBk6Z")
        #expect(Base58.encode(hex("0000287fb4cd")) == "11233QC4")
        #expect(Base58.decode("11233QC4") == hex("0000287fb4cd"))
        #expect(Base58.encode([]) == "" && Base58.decode("") == [])
        #expect(Base58.decode("0") == nil && Base58.decode("2NEpo 7") == nil)
    }

    @Test func base32_matchesRFC4648Vectors_lowercaseUnpadded() {
        let vectors = [("", ""), ("f", "my"), ("fo", "mzxq"), ("foo", "mzxw6"), ("foob", "mzxw6yq"),
                       ("fooba", "mzxw6ytb"), ("foobar", "mzxw6ytboi")]
        for (plain, enc) in vectors {
            #expect(Base32.encode(Array(plain.utf8)) == enc)
            #expect(Base32.decode(enc) == Array(plain.utf8))
        }
        #expect(Base32.decode("MZXQ") == nil)
        #expect(Base32.decode("mzxq====") == nil)
        #expect(Base32.decode("mzxr") == nil)   // non-zero trailing bits
        #expect(Base32.decode("m") == nil)      // impossible length
    }

    @Test func base64url_matchesRFC4648Vectors_unpadded() {
        let vectors = [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"),
                       ("fooba", "Zm9vYmE"), ("foobar", "Zm9vYmFy")]
        for (plain, enc) in vectors {
            #expect(Base64URL.encode(Array(plain.utf8)) == enc)
            #expect(Base64URL.decode(enc) == Array(plain.utf8))
        }
        #expect(Base64URL.encode([0xfb, 0xff]) == "-_8")
        #expect(Base64URL.decode("Zm9v=") == nil && Base64URL.decode("Z") == nil && Base64URL.decode("Zh") == nil)
    }

    @Test func fuzz_baseDecodersNeverTrap_andRoundTripWhatTheyAccept() {
        var rng = SeededRandom(seed: 0xBA5E)
        let charset = Array("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0OIl=-_ /\u{0}é".utf8)
        var accepted = 0
        for i in 0..<30_000 {
            let data = rng.bytes(Int(rng.next() % 40))
            #expect(Base58.decode(Base58.encode(data)) == data)
            #expect(Base32.decode(Base32.encode(data)) == data)
            #expect(Base64URL.decode(Base64URL.encode(data)) == data)
            let raw = (0..<Int(rng.next() % 40)).map { _ in charset[Int(rng.next() % UInt64(charset.count))] }
            let s = i % 5 == 0 ? String(decoding: rng.bytes(Int(rng.next() % 20)), as: UTF8.self) : String(decoding: raw, as: UTF8.self)
            if let d = Base58.decode(s) { accepted += 1; #expect(Base58.encode(d) == s) }
            if let d = Base32.decode(s) { #expect(Base32.encode(d) == s) }
            if let d = Base64URL.decode(s) { #expect(Base64URL.encode(d) == s) }
        }
        #expect(accepted > 100)
    }
}
