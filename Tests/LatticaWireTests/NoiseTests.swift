import LatticaCore
import LatticaCrypto
import Testing
@testable import LatticaWire

func hex(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = s.utf8.makeIterator()
    func nib(_ c: UInt8) -> UInt8 { c >= 97 ? c - 87 : (c >= 65 ? c - 55 : c - 48) }
    while let a = it.next(), let b = it.next() { out.append(nib(a) << 4 | nib(b)) }
    return out
}

/// Runs a full libp2p Noise handshake between two instances; returns both outcomes.
func noiseHandshake(_ i: inout Noise.Handshake, _ r: inout Noise.Handshake,
                    tamper: ((Int, inout [UInt8]) -> Void)? = nil) -> (Noise.Directive?, Noise.Directive?) {
    var toR: [UInt8] = [], toI: [UInt8] = []
    var outI: Noise.Directive?, outR: Noise.Directive?
    var message = 0
    func absorb(_ ds: [Noise.Directive], _ to: inout [UInt8], _ out: inout Noise.Directive?) {
        for d in ds {
            switch d {
            case .send(var b): tamper?(message, &b); message += 1; to += b
            default: out = d
            }
        }
    }
    absorb(i.start(), &toR, &outI)
    absorb(r.start(), &toI, &outR)
    for _ in 0..<10 where !(toR.isEmpty && toI.isEmpty) {
        let a = toR; toR = []
        absorb(r.onBytes(a), &toI, &outR)
        let b = toI; toI = []
        absorb(i.onBytes(b), &toR, &outI)
    }
    return (outI, outR)
}

extension Noise.Directive {
    var session: Noise.Session? { if case .established(let s) = self { s } else { nil } }
    var failure: Noise.Failure? { if case .failed(let f) = self { f } else { nil } }
}

@Suite struct NoiseTests {
    let alice = try! Ed25519PrivateKey(seed: [UInt8](repeating: 1, count: 32))
    let bob = try! Ed25519PrivateKey(seed: [UInt8](repeating: 2, count: 32))

    /// cacophony test vector for Noise_XX_25519_ChaChaPoly_SHA256 (haskell-cryptography/cacophony,
    /// vectors/cacophony.txt): fixed keys, prologue "John Galt", six messages.
    @Test func xxHandshake_matchesTheCacophonyKnownAnswerVector() throws {
        let prologue = hex("4a6f686e2047616c74")
        var i = Noise.XXHandshake(initiator: true,
                                  staticKey: try X25519PrivateKey(bytes: hex("e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1")),
                                  ephemeral: try X25519PrivateKey(bytes: hex("893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a")),
                                  prologue: prologue)
        var r = Noise.XXHandshake(initiator: false,
                                  staticKey: try X25519PrivateKey(bytes: hex("4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893")),
                                  ephemeral: try X25519PrivateKey(bytes: hex("bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b")),
                                  prologue: prologue)
        let messages: [(String, String)] = [
            ("4c756477696720766f6e204d69736573", "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444c756477696720766f6e204d69736573"),
            ("4d757272617920526f746862617264", "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f14480884381cbad1f276e038c48378ffce2b65285e08d6b68aaa3629a5a8639392490e5b9bd5269c2f1e4f488ed8831161f19b7815528f8982ffe09be9b5c412f8a0db50f8814c7194e83f23dbd8d162c9326ad"),
            ("462e20412e20486179656b", "c7195ffacac1307ff99046f219750fc47693e23c3cb08b89c2af808b444850a80ae475b9df0f169ae80a89be0865b57f58c9fea0d4ec82a286427402f113e4b6ae769a1d95941d49b25030"),
            ("4361726c204d656e676572", "96763ed773f8e47bb3712f0e29b3060ffc956ffc146cee53d5e1df"),
            ("4a65616e2d426170746973746520536179", "3e40f15f6f3a46ae446b253bf8b1d9ffb6ed9b174d272328ff91a7e2e5c79c07f5"),
            ("457567656e2042f6686d20766f6e2042617765726b", "eb3f3515110702e047a6c9da4478b6ead94873c11c0f2d710ddb3f09fce024b3a58502ae3f"),
        ]
        for k in 0..<3 {
            let (payload, ciphertext) = (hex(messages[k].0), hex(messages[k].1))
            let sender = k % 2 == 0
            let written = sender ? try i.writeMessage(payload: payload) : try r.writeMessage(payload: payload)
            #expect(written == ciphertext, "message \(k)")
            let read = sender ? try r.readMessage(written[...]) : try i.readMessage(written[...])
            #expect(read == payload)
        }
        #expect(i.symmetric.h == hex("c8e5f64e846193be2a834104c2a009868d6c9f3bd3c186299888b488b2f1f58e"))
        #expect(r.symmetric.h == i.symmetric.h)
        let ki = i.split(), kr = r.split()
        var ti = Noise.Transport(sendKey: ki.send, receiveKey: ki.receive)
        var tr = Noise.Transport(sendKey: kr.send, receiveKey: kr.receive)
        for k in 3..<6 {
            let (payload, ciphertext) = (hex(messages[k].0), hex(messages[k].1))
            var out: [UInt8] = []
            // Transport messages keep alternating: 3 responder, 4 initiator, 5 responder.
            let fromInitiator = k % 2 == 0
            #expect(fromInitiator ? ti.encrypt(payload, into: &out) : tr.encrypt(payload, into: &out))
            #expect(Array(out.dropFirst(2)) == ciphertext, "message \(k)")
            let opened = fromInitiator ? tr.decrypt(out) : ti.decrypt(out)
            #expect((try? opened.get().map { Array($0) }) == [payload])
        }
    }

    @Test func libp2pHandshake_authenticatesBothIdentities_andTransportsWorkBothWays() throws {
        var i = Noise.Handshake(initiator: true, identity: alice, expectedPeer: bob.publicKey.peerId, keys: testKeys(1))
        var r = Noise.Handshake(initiator: false, identity: bob, keys: testKeys(2))
        let (a, b) = noiseHandshake(&i, &r)
        var si = try #require(a?.session)
        var sr = try #require(b?.session)
        #expect(si.remotePeer == PeerId(ed25519PublicKey: bob.publicKey.bytes))
        #expect(sr.remotePeer == PeerId(ed25519PublicKey: alice.publicKey.bytes))
        #expect(si.handshakeHash == sr.handshakeHash)
        var rng = SeededRandom(seed: 42)
        for size in [0, 1, 100, 65519, 65520, 200_000] {
            let msg = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var wire: [UInt8] = []
            #expect(si.transport.encrypt(msg, into: &wire))
            var got: [UInt8] = []
            for chunk in wire.chunked(by: 1 + Int(rng.next() % 40_000)) {
                got += (try sr.transport.decrypt(Array(chunk)).get()).flatMap { $0 }
            }
            #expect(got == msg)
            wire = []
            #expect(sr.transport.encrypt(msg, into: &wire))
            #expect((try si.transport.decrypt(wire).get()).flatMap { $0 } == msg)
        }
    }

    @Test func dialer_rejectsTheResponder_whenItIsNotThePeerItDialled() {
        let carol = try! Ed25519PrivateKey(seed: [UInt8](repeating: 3, count: 32))
        var i = Noise.Handshake(initiator: true, identity: alice, expectedPeer: carol.publicKey.peerId, keys: testKeys(1))
        var r = Noise.Handshake(initiator: false, identity: bob, keys: testKeys(2))
        let (a, b) = noiseHandshake(&i, &r)
        #expect(a?.failure == .peerMismatch(expected: carol.publicKey.peerId, actual: bob.publicKey.peerId))
        #expect(b == nil || b?.session == nil)   // the responder never completes: message 3 was not sent
    }

    @Test func tamperedHandshakeMessages_failAuthentication() {
        for (index, position) in [(1, 40), (1, 100), (2, 10), (2, 70)] {
            var i = Noise.Handshake(initiator: true, identity: alice, keys: testKeys(1))
            var r = Noise.Handshake(initiator: false, identity: bob, keys: testKeys(2))
            let (a, b) = noiseHandshake(&i, &r) { k, bytes in if k == index { bytes[position] ^= 0x01 } }
            let failure = index == 1 ? a?.failure : b?.failure
            #expect(failure == .decryptionFailed, "message \(index) byte \(position)")
        }
    }

    @Test func payloadSigned_overAnotherStaticKey_isRejected() {
        var i = Noise.Handshake(initiator: true, identity: alice, keys: testKeys(1))
        var r = Noise.Handshake(initiator: false, identity: bob, keys: testKeys(2))
        r.payloadOverride = Noise.Payload.signed(identity: bob, staticPublicKey: testKeys(99).staticKey.publicKey).encoded()
        let (a, _) = noiseHandshake(&i, &r)
        #expect(a?.failure == .badSignature)
    }

    @Test func payload_roundTripsWithMuxerExtensions_andRejectsMissingFields() throws {
        let p = Noise.Payload.signed(identity: alice, staticPublicKey: [UInt8](repeating: 9, count: 32), streamMuxers: ["/yamux/1.0.0"])
        let d = try Noise.Payload(decoding: p.encoded()[...])
        #expect(d == p)
        #expect(try d.verify(staticPublicKey: [UInt8](repeating: 9, count: 32)) == alice.publicKey.peerId)
        #expect(throws: Noise.Failure.malformedPayload) { try Noise.Payload(decoding: [0x0A, 0x01, 0x00][...]) }
    }

    @Test func transport_rejectsTamperedFrames_andRefusesToReuseNonces() throws {
        var i = Noise.Handshake(initiator: true, identity: alice, keys: testKeys(1))
        var r = Noise.Handshake(initiator: false, identity: bob, keys: testKeys(2))
        let (a, b) = noiseHandshake(&i, &r)
        var si = try #require(a?.session), sr = try #require(b?.session)
        var wire: [UInt8] = []
        _ = si.transport.encrypt([1, 2, 3, 4], into: &wire)
        wire[3] ^= 0x80
        #expect(sr.transport.decrypt(wire) == .failure(.decryptionFailed))
        #expect(sr.transport.decrypt([0, 0]) == .failure(.decryptionFailed))  // dead after failure
        si.transport.setNonces(send: UInt64.max - 1, receive: 0)
        var out: [UInt8] = []
        #expect(si.transport.encrypt([1], into: &out))
        #expect(!si.transport.encrypt([2], into: &out))
        #expect(si.transport.failed == .nonceExhausted)
    }

    @Test func decryptCopying_givesTheSamePlaintexts_asDecrypt_forAnySplitAndAnyCorruption() throws {
        var i = Noise.Handshake(initiator: true, identity: alice, keys: testKeys(1))
        var r = Noise.Handshake(initiator: false, identity: bob, keys: testKeys(2))
        let (a, b) = noiseHandshake(&i, &r)
        var sender = try #require(a?.session?.transport)
        let receiver = try #require(b?.session?.transport)
        let seed: UInt64 = 0xC0_B1  // printed in every failure: the run replays
        var rng = SeededRandom(seed: seed)
        // Frames of every size class: empty, tiny, and full 65,519-byte ones.
        var wire: [UInt8] = [], sent: [UInt8] = []
        for n in [0, 1, 5, 300, 65_519, 65_519, 7, 0, 40_000, 65_519, 2] {
            let m = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            sent += m
            #expect(sender.encrypt(m, into: &wire), "seed \(seed)")
        }
        for round in 0..<60 {
            var bytes = wire
            let corrupt = round % 4 == 3
            if corrupt { bytes[Int(rng.next() % UInt64(bytes.count))] ^= UInt8.random(in: 1...255, using: &rng) }
            // The same bytes in the same random chunks, through both entry points.
            var cuts: [Int] = [0]
            while cuts.last! < bytes.count { cuts.append(min(bytes.count, cuts.last! + 1 + Int(rng.next() % (round % 2 == 0 ? 9 : 150_000)))) }
            var viaArray = receiver, viaCopy = receiver
            var outArray: [UInt8] = [], outCopy: [UInt8] = []
            var failedArray = false, failedCopy = false
            for (lo, hi) in zip(cuts, cuts.dropFirst()) {
                let chunk = Array(bytes[lo..<hi])
                if !failedArray {
                    switch viaArray.decrypt(chunk) {
                    case .success(let ps): for p in ps { outArray += p }
                    case .failure: failedArray = true
                    }
                }
                if !failedCopy {
                    switch chunk.withUnsafeBytes({ viaCopy.decrypt(copying: $0) }) {
                    case .success(let ps): for p in ps { #expect(!p.isEmpty, "seed \(seed)"); outCopy += p }
                    case .failure: failedCopy = true
                    }
                }
                #expect(viaCopy.partial.count <= 2 + 65_535, "seed \(seed)")
            }
            #expect(failedArray == failedCopy && outArray == outCopy, "seed \(seed)")
            if !failedCopy { #expect(viaArray.receiveNonce == viaCopy.receiveNonce, "seed \(seed)") }  // a failed transport is dead
            if !corrupt { #expect(outCopy == sent && !failedCopy, "seed \(seed)") }
            // A corrupted length prefix may only shorten the stream; any other flip must fail.
        }
    }

    @Test func decoders_neverCrash_onRandomMutatedAndTruncatedHandshakeAndTransportBytes() throws {
        let seed: UInt64 = 0x401_5E  // printed in every failure: the run replays
        var rng = SeededRandom(seed: seed)
        // A genuine transcript to mutate.
        var transcript: [[UInt8]] = []
        var i0 = Noise.Handshake(initiator: true, identity: alice, keys: testKeys(1))
        var r0 = Noise.Handshake(initiator: false, identity: bob, keys: testKeys(2))
        _ = noiseHandshake(&i0, &r0) { _, b in transcript.append(b) }
        #expect(transcript.count == 3, "seed \(seed)")
        var failures = 0
        for round in 0..<1500 {
            var input: [UInt8]
            switch round % 3 {
            case 0: input = (0..<Int(rng.next() % 300)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 1:
                input = transcript[0]
                input[Int(rng.next() % UInt64(input.count))] ^= UInt8.random(in: 1...255, using: &rng)
            default: input = Array(transcript[0].prefix(Int(rng.next() % UInt64(transcript[0].count))))
            }
            var r = Noise.Handshake(initiator: false, identity: bob, keys: testKeys(2))
            for chunk in input.chunked(by: 1 + Int(rng.next() % 64)) {
                for d in r.onBytes(chunk) { if d.failure != nil { failures += 1 } }
                #expect(r.buffer.count <= 2 + 65535, "seed \(seed)")
            }
            var i = Noise.Handshake(initiator: true, identity: alice, keys: testKeys(1))
            _ = i.start()
            var m2 = transcript[1]
            if round % 2 == 0 { m2[2 + Int(rng.next() % UInt64(m2.count - 2))] ^= 0x10 } else { m2 = Array(m2.prefix(Int(rng.next() % UInt64(m2.count)))) }
            let ds = i.onBytes(m2 + [0, 0])
            if round % 2 == 0 { #expect(ds.contains { $0.failure != nil }, "a flipped bit in message 2 must fail (seed \(seed))") }
            // Payload decoder on random bytes.
            let junk = (0..<Int(rng.next() % 100)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = try? Noise.Payload(decoding: junk[...])
        }
        _ = failures  // message 1 is unauthenticated (any 32 bytes are a valid `e`): no count to expect
        // Transport decoder on random frames.
        var (a, b) = noiseHandshake(&i0, &r0)
        _ = (a, b)
        var i = Noise.Handshake(initiator: true, identity: alice, keys: testKeys(1))
        var r = Noise.Handshake(initiator: false, identity: bob, keys: testKeys(2))
        (a, b) = noiseHandshake(&i, &r)
        let base = try #require(b?.session?.transport)
        for _ in 0..<1000 {
            var t = base
            let junk = (0..<Int(rng.next() % 2000)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if case .success(let out) = t.decrypt(junk) { #expect(out.isEmpty, "seed \(seed)") }
            #expect(t.partial.count <= 65537, "seed \(seed)")
            var c = base
            if case .success(let out) = junk.withUnsafeBytes({ c.decrypt(copying: $0) }) { #expect(out.isEmpty, "seed \(seed)") }
            #expect(c.partial.count <= 65537, "seed \(seed)")
        }
    }
}

extension Ed25519PublicKey {
    var peerId: PeerId { PeerId(ed25519PublicKey: bytes) }
}

/// Noise key material from a seed (tests replay bit for bit).
func testKeys(_ seed: UInt64) -> Noise.Keys {
    var r = SeededRandom(seed: 0x4E01_5E00 ^ seed)
    return .seeded(&r)
}
