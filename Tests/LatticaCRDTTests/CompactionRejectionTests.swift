import LatticaCore
import LatticaCrypto
import Testing
@testable import LatticaCRDT

@Suite struct CompactionRejectionTests {
    /// A writer `a` with overwrites, a set add and a counter, and `b` holding a's original batches.
    struct Fixture {
        var rng = SeededRandom(seed: testSeed(801))
        let sa: CRDT.Signer, sb: CRDT.Signer, mallory: CRDT.Signer
        var a: CRDT.Instance, b: CRDT.Instance

        init() {
            sa = makeSigner(&rng); sb = makeSigner(&rng); mallory = makeSigner(&rng)
            a = CRDT.Instance(signer: sa, seed: 1)
            b = CRDT.Instance(signer: sb, seed: 2)
            for k in 0..<20 { _ = try! a.onLocalWrite([.set("kv/r/\(k % 3)", .int(Int64(k)))], now: .zero, wall: wall0) }
            _ = try! a.onLocalWrite([.add("kv/s", .string("e")), .increment("kv/n", by: 2)], now: .zero, wall: wall0)
            _ = try! a.onLocalWrite([.increment("kv/n", by: 3)], now: .zero, wall: wall0)
            _ = b.onMessage(.push(a.allBatches), from: sa.peerId, now: .zero, wall: wall0)
        }

        var author: PeerId { sa.peerId }
        var range: ClosedRange<UInt64> { 1...a.versions[author] }
        var live: [CRDT.Delta] { a.allBatches.flatMap(\.deltas).filter { a.liveSeqs(of: author).contains($0.seq) } }

        mutating func send(_ batch: CRDT.SignedBatch, bytes: [UInt8]? = nil) -> Outcome {
            let m = bytes ?? CRDT.Message.push([batch]).encoded()
            return Outcome(b.onMessage(m[...], from: mallory.peerId, now: .zero, wall: wall0))
        }
    }

    @Test func test_forgedBadlySignedAndContradictingCompactedBatches_areRejectedCountedAndChangeNothing() {
        var f = Fixture()
        let hash = f.b.state.stateHash, log = f.b.logBytes
        // Signed by mallory in a's name.
        let forged = CRDT.SignedBatch(author: f.author, compacting: f.range, live: f.live, signer: f.mallory)
        #expect(f.send(forged).misbehaved.map(\.0) == [f.mallory.peerId])
        #expect(f.b.metrics.rejected(.forgedAuthor) == 1)
        // a's key, but the signature damaged.
        let real = CRDT.SignedBatch(author: f.author, compacting: f.range, live: f.live, signer: f.sa)
        var bytes = CRDT.Message.push([real]).encoded()
        bytes[bytes.count - 1] ^= 1
        _ = f.send(real, bytes: bytes)
        #expect(f.b.metrics.rejected(.badSignature) == 1)
        // Signed by a, but contradicting b's copy: a live delta changed, an OR-set add left out,
        // a range cutting across b's batches, a delta b holds as overwritten brought back.
        var changed = f.live
        changed[0].op = .register(.int(999))
        let setAdd = f.live.filter { !$0.op.isKernel }
        // (seqs 21 and 22 are one batch of two deltas: a range from 22 cuts across it)
        let cut = CRDT.SignedBatch(author: f.author, compacting: 22...f.range.upperBound, live: f.live.filter { $0.seq >= 22 }, signer: f.sa)
        for bad in [CRDT.SignedBatch(author: f.author, compacting: f.range, live: changed, signer: f.sa),
                    CRDT.SignedBatch(author: f.author, compacting: f.range, live: setAdd, signer: f.sa), cut] {
            let out = f.send(bad)
            #expect(out.misbehaved.contains { if case .equivocation = $0.1 { true } else { false } })
            #expect(out.persisted.isEmpty)
        }
        #expect(f.b.metrics.rejected(.conflicting) == 3 && f.b.metrics.equivocations == 3)
        #expect(f.b.state.stateHash == hash && f.b.logBytes == log)
        // The honest one is taken; an older, larger compaction of the same range afterwards is a duplicate.
        #expect(f.send(real).persisted.map(\.replaces) == [f.range])
        #expect(f.b.logBytes < log / 4 && f.b.state.stateHash == hash)
        let more = CRDT.SignedBatch(author: f.author, compacting: f.range, live: f.a.allBatches.flatMap(\.deltas), signer: f.sa)
        #expect(f.send(more).misbehaved.isEmpty)
        #expect(f.b.metrics.rejected(.replayed) == 1 && f.b.metrics.equivocations == 3)
        // And the original batches, replayed now, are duplicates, not equivocations.
        _ = f.b.onMessage(.push(f.a.allBatches), from: f.sa.peerId, now: .zero, wall: wall0)
        #expect(f.b.metrics.equivocations == 3)
    }

    @Test func test_compactedBatchDecoder_neverTraps_andWhatDecodesReencodesToTheSameBytes() {
        let seed = testSeed(802)
        var rng = SeededRandom(seed: seed)
        var f = Fixture()
        var valid: [[UInt8]] = [CRDT.SignedBatch(author: f.author, compacting: f.range, live: f.live, signer: f.sa).encoded,
                                CRDT.SignedBatch(author: f.author, compacting: 5...9, live: [], signer: f.sa).encoded]
        var w = CompactionWorld(nodes: 3, settings: CRDT.Settings(), seed: seed)
        let load = Workload(creators: w.signers.map(\.peerId), peers: w.signers.map(\.peerId))
        for _ in 0..<120 { let i = rng.below(3); w.write(i, CompactionTests.randomWrites(&rng, load: load, me: w.signers[i].peerId)) }
        for i in 0..<3 { w.compact(i) }
        valid += w.nodes.flatMap(\.allBatches).filter(\.isCompacted).map(\.encoded)
        #expect(valid.count > 3)
        var successes = 0, failures = 0
        for k in 0..<6000 {
            let input: [UInt8] = k % 4 == 0 ? [2] + rng.randomBytes(rng.below(200)) : rng.damaged(valid[rng.below(valid.count)])
            do {
                let batch = try CRDT.SignedBatch(decoding: input[...])
                successes += 1
                #expect(batch.encoded == input, "seed \(seed), input \(input)")
                let s = batch.deltas.map(\.seq)
                #expect(s == s.sorted() && Set(s).count == s.count && s.allSatisfy(batch.seqs.contains), "seed \(seed)")
            } catch {
                failures += 1
            }
            // Whatever the bytes, as a push the receiver counts and never traps.
            var m: [UInt8] = [1, 1]
            Varint.encode(UInt64(input.count), into: &m)
            m += input
            _ = f.b.onMessage(m[...], from: f.mallory.peerId, now: .zero, wall: wall0)
        }
        #expect(successes > 0 && failures > 0, "seed \(seed)")
        #expect(f.b.metrics.malformedMessages > 0)
        for v in valid { #expect((try? CRDT.SignedBatch(decoding: v[...]))?.encoded == v) }
    }

    @Test func test_compactedBatchBytes_areTheDocumentedLayout() throws {
        let key = try Ed25519PrivateKey(seed: [UInt8](repeating: 1, count: 32))
        let s = CRDT.Signer(key: key)
        let d = CRDT.Delta(seq: 7, time: CRDT.Timestamp(wall: 1_700_000_000_000), path: "kv/a", op: .register(.string("hi")))
        let b = CRDT.SignedBatch(author: s.peerId, compacting: 1...9, live: [d], signer: s)
        let e = b.encoded
        #expect(e.count == 157)
        #expect(e[0] == 2 && Array(e[1...7]) == [0x26, 0x00, 0x24, 0x08, 0x01, 0x12, 0x20])
        // first seq 1, last seq 9, 1 live delta, gap 6 (seq 1 + 6 = 7), then the delta as in v1.
        #expect(Array(e[72..<76]) == [0x01, 0x09, 0x01, 0x06])
        #expect(Array(e[76..<93]) == [0x80, 0xd0, 0x95, 0xff, 0xbc, 0x31, 0x00, 0x04, 0x6b, 0x76, 0x2f, 0x61, 0x01, 0x02, 0x02, 0x68, 0x69])
        // The same delta in a version-1 batch (Docs/CRDT.md §5.3): 155 bytes.
        let plain = CRDT.SignedBatch(author: s.peerId, firstSeq: 1, deltas: [CRDT.Delta(seq: 1, time: d.time, path: d.path, op: d.op)], signer: s)
        #expect(plain.encoded.count == 155 && Array(plain.encoded[72..<74]) == [0x01, 0x01])
        let decoded = try CRDT.SignedBatch(decoding: e[...])
        #expect(b.verify() == nil && decoded == b)
    }
}
