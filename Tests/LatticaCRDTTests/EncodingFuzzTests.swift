import LatticaCore
import Testing
@testable import LatticaCRDT

@Suite struct EncodingFuzzTests {
    /// Valid messages of every kind, with batches holding every operation.
    static func sampleMessages(seed: UInt64) -> [CRDT.Message] {
        var rng = SeededRandom(seed: seed)
        let signers = (0..<3).map { _ in makeSigner(&rng) }
        var nodes = signers.enumerated().map { CRDT.Instance(signer: $1, seed: UInt64($0)) }
        let load = Workload(creators: signers.map(\.peerId), peers: signers.map(\.peerId))
        var messages: [CRDT.Message] = []
        for i in 0..<30 {
            let n = i % 3
            let writes = (0..<(1 + rng.below(5))).map { _ in load.randomWrite(&rng, me: nodes[n].localPeer) }
            guard let out = try? nodes[n].onLocalWrite(writes, now: .zero, wall: wall0) else { continue }
            for p in Outcome(out).persisted {
                messages.append(.push([p.batch]))
                for m in 0..<3 where m != n { _ = nodes[m].onMessage(.push([p.batch]), from: nodes[n].localPeer, now: .zero, wall: wall0) }
            }
        }
        messages.append(.versions(nodes[0].versions, wantsReply: true))
        messages.append(.versions(CRDT.VersionVector(), wantsReply: false))
        messages.append(.missing(Array(nodes[1].allBatches.prefix(5)), more: true))
        messages.append(.missing([], more: false))
        messages.append(.summary(digest: nodes[0].versions.digest, wantsReply: true))
        messages.append(.summary(digest: CRDT.VersionVector().digest, wantsReply: false))
        return messages
    }

    @Test func test_everyMessage_roundTrips_throughItsCanonicalEncoding() throws {
        let messages = Self.sampleMessages(seed: testSeed(11))
        #expect(messages.count > 20)
        for m in messages {
            let bytes = m.encoded()
            let decoded = try CRDT.Message.decode(bytes[...])
            #expect(decoded == m)
            #expect(decoded.encoded() == bytes)
        }
    }

    @Test func test_messageDecoder_neverTraps_onRandomBytesOrDamagedEncodings() {
        let seed = testSeed(12)
        var rng = SeededRandom(seed: seed)
        let valid = Self.sampleMessages(seed: seed).map { $0.encoded() }
        var failures = 0, successes = 0
        for i in 0..<6000 {
            let input: [UInt8]
            if i % 3 == 0 {
                input = [UInt8(1 + rng.below(3))] + rng.randomBytes(rng.below(120))
            } else {
                input = rng.damaged(valid[rng.below(valid.count)])
            }
            do {
                let m = try CRDT.Message.decode(input[...])
                successes += 1
                // Whatever decodes is canonical: it re-encodes to the same bytes.
                #expect(m.encoded() == input, "seed \(seed), input \(input)")
            } catch {
                failures += 1
            }
        }
        #expect(failures > 3000, "seed \(seed)")
        #expect(successes > 0, "seed \(seed)")
    }

    @Test func test_batchDecoder_neverTraps_andDamagedBatchesNeverVerify() {
        let seed = testSeed(13)
        var rng = SeededRandom(seed: seed)
        let batches = Self.sampleMessages(seed: seed).compactMap { m -> CRDT.SignedBatch? in
            if case .push(let b) = m { return b.first }
            return nil
        }
        var verified = 0
        for _ in 0..<3000 {
            let original = batches[rng.below(batches.count)]
            let damaged = rng.damaged(original.encoded)
            guard damaged != original.encoded, let b = try? CRDT.SignedBatch(decoding: damaged[...]) else { continue }
            if b.verify() == nil { verified += 1 }
        }
        #expect(verified == 0, "seed \(seed)")
    }

    @Test func test_recordDecoders_neverTrap_onHostileValues() {
        let seed = testSeed(14)
        var rng = SeededRandom(seed: seed)
        let valid: [[UInt8]] = [
            CRDT.Checkpoint(contentHash: rng.randomBytes(32), step: 9, metrics: ["a": 1, "b": 2]).value,
            CRDT.Progress(step: 4, loss: 0.5, accuracy: 0.75).value,
            CRDT.Report(reason: "x", step: 1, evidence: [rng.randomBytes(32)]).value,
        ].map { if case .bytes(let b) = $0 { b } else { [] } }
        var accepted = 0
        for i in 0..<4000 {
            let b = i % 2 == 0 ? rng.randomBytes(rng.below(80)) : rng.damaged(valid[rng.below(3)])
            let v = CRDT.Value.bytes(b)
            if CRDT.Checkpoint(value: v) != nil { accepted += 1 }
            if CRDT.Progress(value: v) != nil { accepted += 1 }
            if CRDT.Report(value: v) != nil { accepted += 1 }
            var r = CRDT.ByteReader(b[...])
            _ = try? CRDT.Value(from: &r, maxLength: 64)
            _ = CRDT.Namespace.parse(String(decoding: b, as: UTF8.self))
        }
        #expect(accepted > 0)
        #expect(CRDT.Checkpoint(value: .bytes(valid[0])) != nil && CRDT.Report(value: .string("x")) == nil)
    }

    /// Field 4 (accuracy) is written only when known: a record without it has the bytes of the
    /// three-field record of before, and such a record decodes with no accuracy.
    @Test func test_progressAccuracy_roundTrips_andARecordWithoutItKeepsTheOldBytes() {
        let withAccuracy = CRDT.Progress(step: 12, loss: 0.25, samples: 64, accuracy: 0.875)
        #expect(CRDT.Progress(value: withAccuracy.value) == withAccuracy)
        var old = ProtobufWriter()
        old.uint64(1, 12); old.fixed64(2, (0.25).bitPattern); old.uint64(3, 64)
        #expect(CRDT.Progress(step: 12, loss: 0.25, samples: 64).value == .bytes(old.bytes))
        #expect(CRDT.Progress(value: .bytes(old.bytes)) == CRDT.Progress(step: 12, loss: 0.25, samples: 64, accuracy: nil))
        var new = old
        new.fixed64(4, (0.875).bitPattern)
        #expect(withAccuracy.value == .bytes(new.bytes))
        #expect(new.bytes == [0x08, 0x0c, 0x11, 0, 0, 0, 0, 0, 0, 0xd0, 0x3f, 0x18, 0x40, 0x21, 0, 0, 0, 0, 0, 0, 0xec, 0x3f])  // Docs/CRDT.md §3
        var wrongType = old
        wrongType.uint64(4, 1)  // accuracy as a varint: not the format
        #expect(CRDT.Progress(value: .bytes(wrongType.bytes)) == nil)
    }

    @Test func test_versionVectorNamingABillionAuthors_isRejectedByItsBound_beforeAllocating() {
        var w = CRDT.ByteWriter()
        w.u8(2); w.u8(1); w.uvarint(1_000_000_000)
        #expect(throws: CRDT.DecodeError.overLimit("version vector authors", 1_000_000_000)) {
            try CRDT.Message.decode(w.bytes[...])
        }
        // Within the bound but more than the bytes could hold: truncated, not an allocation.
        var v = CRDT.ByteWriter()
        v.u8(2); v.u8(1); v.uvarint(4000)
        #expect(throws: CRDT.DecodeError.truncated) { try CRDT.Message.decode(v.bytes[...]) }
    }

    @Test func test_batchWithMoreDeltasThanTheLimit_isRejected() {
        var rng = SeededRandom(seed: 15)
        let s = makeSigner(&rng)
        let deltas = (1...20).map { CRDT.Delta(seq: UInt64($0), time: .init(wall: 1), path: "kv/a", op: .register(.int(1))) }
        let b = CRDT.SignedBatch(author: s.peerId, firstSeq: 1, deltas: deltas, signer: s)
        var limits = CRDT.Limits()
        limits.maxDeltasPerBatch = 10
        #expect(throws: CRDT.DecodeError.overLimit("deltas", 20)) { try CRDT.SignedBatch(decoding: b.encoded[...], limits: limits) }
        #expect((try? CRDT.SignedBatch(decoding: b.encoded[...])) == b)
    }
}
