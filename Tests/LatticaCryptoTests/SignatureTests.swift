import Testing
@testable import LatticaCrypto

@Suite struct Ed25519Tests {
    /// RFC 8032 §7.1, TEST 1-3 and TEST SHA(abc).
    static let vectors: [(seed: String, pub: String, msg: String, sig: String)] = [
        ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
         "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
         "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
        ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
         "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
         "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
        ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
         "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
         "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
    ]

    @Test func sign_matchesRFC8032Vectors() throws {
        for v in Self.vectors {
            let key = try Ed25519PrivateKey(seed: hex(v.seed))
            #expect(key.publicKey.bytes == hex(v.pub))
            #expect(key.sign(hex(v.msg)) == hex(v.sig))
            #expect(key.publicKey.isValidSignature(hex(v.sig), for: hex(v.msg)))
            #expect(key.seed == hex(v.seed))
        }
    }

    @Test func verify_rejectsFlippedBitsInSignatureMessageOrKey() throws {
        let key = try Ed25519PrivateKey(seed: hex(Self.vectors[2].seed))
        let msg = hex(Self.vectors[2].msg)
        let sig = key.sign(msg)
        for bit in stride(from: 0, to: 512, by: 7) {
            var bad = sig
            bad[bit / 8] ^= 1 << UInt8(bit % 8)
            #expect(!key.publicKey.isValidSignature(bad, for: msg))
        }
        var badMsg = msg
        badMsg[0] ^= 0x01
        #expect(!key.publicKey.isValidSignature(sig, for: badMsg))
        let other = try Ed25519PrivateKey(seed: hex(Self.vectors[0].seed))
        #expect(!other.publicKey.isValidSignature(sig, for: msg))
        #expect(!key.publicKey.isValidSignature(sig.dropLast(), for: msg))
        #expect(!key.publicKey.isValidSignature(sig + [0], for: msg))
    }

    @Test func init_rejectsWrongLengths() {
        #expect(throws: CryptoError.badKeyLength) { try Ed25519PrivateKey(seed: [UInt8](repeating: 1, count: 31)) }
        #expect(throws: CryptoError.badKeyLength) { try Ed25519PublicKey(bytes: [UInt8](repeating: 1, count: 33)) }
    }

    @Test func generate_givesDistinctKeysThatSignAndVerify() {
        let a = Ed25519PrivateKey.generate(), b = Ed25519PrivateKey.generate()
        #expect(a.seed != b.seed)
        #expect(!a.hasSameSecret(as: b))
        let sig = a.sign(bytes("hello")[...])
        #expect(a.publicKey.isValidSignature(sig, for: bytes("hello")))
        #expect(!b.publicKey.isValidSignature(sig, for: bytes("hello")))
    }

    @Test func description_neverContainsTheSeed() throws {
        let key = try Ed25519PrivateKey(seed: hex(Self.vectors[0].seed))
        for text in [key.description, String(describing: key), String(reflecting: key), "\(key)", dumped(key)] {
            #expect(!text.contains("9d61b19d"))
            #expect(!text.contains("157"+", 97"))   // first seed bytes in decimal, as an array dump shows them
            #expect(text.contains("redacted") || text.contains("Ed25519PrivateKey"))
        }
        let x = try X25519PrivateKey(bytes: hex(X25519Tests.alicePrivate))
        for text in [x.description, String(reflecting: x), dumped(x)] {
            #expect(!text.contains("77076d0a"))
            #expect(!text.contains("119, 7,"))   // 0x77 0x07 in decimal
        }
    }

    private func dumped(_ value: some Any) -> String {
        var out = ""
        dump(value, to: &out)
        return out
    }
}

@Suite struct X25519Tests {
    // RFC 7748 §6.1.
    static let alicePrivate = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
    static let alicePublic = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    static let bobPrivate = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
    static let bobPublic = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
    static let shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"

    @Test func sharedSecret_matchesRFC7748DiffieHellmanVector() throws {
        let alice = try X25519PrivateKey(bytes: hex(Self.alicePrivate))
        let bob = try X25519PrivateKey(bytes: hex(Self.bobPrivate))
        #expect(alice.publicKey == hex(Self.alicePublic))
        #expect(bob.publicKey == hex(Self.bobPublic))
        #expect(try alice.sharedSecret(with: bob.publicKey) == hex(Self.shared))
        #expect(try bob.sharedSecret(with: alice.publicKey) == hex(Self.shared))
    }

    @Test func scalarMult_matchesRFC7748FunctionVectors() throws {
        // RFC 7748 §5.2, first test vector, and one iteration of the iterated test (k = u = 9).
        let k = try X25519PrivateKey(bytes: hex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"))
        #expect(try k.sharedSecret(with: hex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"))
            == hex("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"))
        let nine = [9] + [UInt8](repeating: 0, count: 31)
        let k9 = try X25519PrivateKey(bytes: nine)
        #expect(try k9.sharedSecret(with: nine) == hex("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"))
    }

    @Test func sharedSecret_rejectsSmallOrderPointsAndWrongLengths() throws {
        let key = X25519PrivateKey.generate()
        let zero = [UInt8](repeating: 0, count: 32)
        let one = [1] + [UInt8](repeating: 0, count: 31)
        // Order-8 point (from the libsodium / cr.yp.to blacklist).
        let order8 = hex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
        for weak in [zero, one, order8] {
            #expect(throws: CryptoError.weakPublicKey) { try key.sharedSecret(with: weak) }
        }
        #expect(throws: CryptoError.badKeyLength) { try key.sharedSecret(with: [UInt8](repeating: 9, count: 31)) }
        #expect(throws: CryptoError.badKeyLength) { try X25519PrivateKey(bytes: [1, 2, 3]) }
    }

    @Test func generate_givesAgreeingPairs() throws {
        let a = X25519PrivateKey.generate(), b = X25519PrivateKey.generate()
        #expect(a.publicKey != b.publicKey)
        #expect(try a.sharedSecret(with: b.publicKey) == b.sharedSecret(with: a.publicKey))
    }
}
