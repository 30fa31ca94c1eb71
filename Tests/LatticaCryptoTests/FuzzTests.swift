import Testing
@testable import LatticaCrypto

/// Seeded fuzz of everything that takes bytes from the network: it must never trap, and random
/// input must never authenticate.
@Suite struct NetworkInputFuzzTests {
    @Test func open_rejectsThousandsOfRandomAndMutatedCiphertexts() throws {
        var rng = LatticaCryptoTestRandom(seed: 0xC4AC_4A20)
        let key = (0..<32).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let valid = ChaChaPoly.seal(key: key, nonce: 3, plaintext: [UInt8](repeating: 7, count: 100), ad: [1, 2])
        var accepted = 0
        for round in 0..<3000 {
            var input: [UInt8]
            switch round % 3 {
            case 0: input = (0..<Int(rng.next() % 160)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case 1: input = Array(valid.prefix(Int(rng.next() % UInt64(valid.count))))
            default:
                input = valid
                input[Int(rng.next() % UInt64(input.count))] ^= UInt8(truncatingIfNeeded: 1 | rng.next())
            }
            if (try? ChaChaPoly.open(key: key, nonce: 3, ciphertext: input, ad: [1, 2])) != nil { accepted += 1 }
            var buffer = input
            let inPlace: Int? = key.withUnsafeBytes { k in
                buffer.withUnsafeMutableBytes { b in
                    guard let base = b.baseAddress else { return nil }
                    return try? ChaChaPoly.openInPlace(key: k, nonce: 3, buffer: base, count: b.count, ad: UnsafeRawBufferPointer(start: nil, count: 0))
                }
            }
            if inPlace != nil { accepted += 1 }
        }
        #expect(accepted == 0)
        #expect(try ChaChaPoly.open(key: key, nonce: 3, ciphertext: valid, ad: [1, 2]).count == 100)
    }

    @Test func publicKeyDecoding_andSignatureChecks_surviveRandomInput() throws {
        var rng = LatticaCryptoTestRandom(seed: 0x5167_0000)
        let signer = try Ed25519PrivateKey(seed: (0..<32).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        let message = [UInt8](repeating: 0xAB, count: 40)
        let signature = signer.sign(message)
        let prefix: [UInt8] = [0x08, 0x01, 0x12, 0x20]
        var decoded = 0, verified = 0
        for round in 0..<3000 {
            let random = (0..<Int(rng.next() % 80)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let input = round % 2 == 0 ? random : prefix + random   // half look like Ed25519 keys
            if let key = try? Ed25519PublicKey(protobufEncoded: input) {
                decoded += 1
                #expect(key.bytes.count == 32)
                if key.isValidSignature(signature, for: message) { verified += 1 }
            }
            if signer.publicKey.isValidSignature(random, for: message) { verified += 1 }
            let x = X25519PrivateKey.generate()
            _ = try? x.sharedSecret(with: random)   // any length, any bytes: throws or returns, never traps
        }
        #expect(decoded > 0)      // the prefixed 32-byte cases decode
        #expect(verified == 0)
    }
}
