import LatticaCore
import Testing
@testable import LatticaCRDT

/// Bad batches: each is rejected, counted, reported where no honest forwarder would send it,
/// and nothing of it is applied.
@Suite struct RejectionTests {
    struct Fixture {
        var rng = SeededRandom(seed: testSeed(21))
        let alice: CRDT.Signer, mallory: CRDT.Signer, relay: PeerId
        var node: CRDT.Instance

        init() {
            alice = makeSigner(&rng)
            mallory = makeSigner(&rng)
            relay = makeSigner(&rng).peerId
            node = CRDT.Instance(signer: makeSigner(&rng), seed: 1)
            _ = node.onPeerConnected(relay, now: .zero)
        }

        func batch(_ s: CRDT.Signer, author: PeerId? = nil, first: UInt64 = 1, count: Int = 3, wall: UInt64 = wall0.milliseconds,
                   path: (Int) -> String = { "kv/x\($0)" }, op: (Int) -> CRDT.Op = { .register(.int(Int64($0))) }) -> CRDT.SignedBatch {
            let deltas = (0..<count).map { CRDT.Delta(seq: first + UInt64($0), time: .init(wall: wall), path: path($0), op: op($0)) }
            return CRDT.SignedBatch(author: author ?? s.peerId, firstSeq: first, deltas: deltas, signer: s)
        }

        /// Delivers `b` from the relay; checks it changed nothing and was counted as `reason`.
        mutating func expectRejected(_ b: CRDT.SignedBatch, _ reason: CRDT.RejectReason, reported: Bool = true,
                                     sourceLocation: SourceLocation = #_sourceLocation) {
            let hash = node.state.stateHash, versions = node.versions, before = node.metrics.rejected(reason)
            let out = Outcome(node.onMessage(CRDT.Message.push([b]).encoded()[...], from: relay, now: .zero, wall: wall0))
            #expect(node.state.stateHash == hash, sourceLocation: sourceLocation)
            #expect(node.versions == versions, sourceLocation: sourceLocation)
            #expect(node.metrics.rejected(reason) == before + 1, sourceLocation: sourceLocation)
            #expect(out.persisted.isEmpty && out.applied.isEmpty, sourceLocation: sourceLocation)
            #expect(out.misbehaved.contains { $0.0 == relay && $0.1 == .invalidBatch(reason) } == reported, sourceLocation: sourceLocation)
        }
    }

    @Test func test_batchWithATamperedSignature_isRejectedAsBadSignature() {
        var f = Fixture()
        let good = f.batch(f.alice)
        var bytes = good.encoded
        bytes[bytes.count - 1] ^= 1
        f.expectRejected(try! CRDT.SignedBatch(decoding: bytes[...]), .badSignature)
    }

    @Test func test_batchSignedByAnotherKeyInTheAuthorsName_isRejectedAsForgedAuthor() {
        var f = Fixture()
        f.expectRejected(f.batch(f.mallory, author: f.alice.peerId), .forgedAuthor)
    }

    @Test func test_batchFromTooFarInTheFuture_isRejected_butNotHeldAgainstTheForwarder() {
        var f = Fixture()
        f.expectRejected(f.batch(f.alice, wall: wall0.milliseconds + 3_600_000), .futureClock, reported: false)
    }

    @Test func test_writesBreakingANamespaceRule_areRejected() {
        var f = Fixture()
        let run = CRDT.RunID(creator: f.alice.peerId, name: "r")
        let m = f.mallory.peerId
        f.expectRejected(f.batch(f.mallory, count: 1, path: { _ in run.config }, op: { _ in .mapSet(key: "lr", .int(1)) }), .notAuthorised)
        f.expectRejected(f.batch(f.mallory, count: 1, path: { _ in run.members }, op: { _ in .setAdd(.string(f.alice.peerId.description), observed: []) }), .notAuthorised)
        f.expectRejected(f.batch(f.mallory, count: 1, path: { _ in run.progress(f.alice.peerId) }, op: { _ in .register(CRDT.Progress(step: 1, loss: 0).value) }), .notAuthorised)
        f.expectRejected(f.batch(f.mallory, count: 1, path: { _ in run.reports(f.alice.peerId) }, op: { _ in .mapRemove(key: m.description) }), .notAuthorised)
        f.expectRejected(f.batch(f.mallory, count: 1, path: { _ in run.progress(m) }, op: { _ in .register(.string("not a record")) }), .wrongType)
        f.expectRejected(f.batch(f.mallory, count: 1, path: { _ in run.members }, op: { _ in .register(.int(1)) }), .wrongType)
        f.expectRejected(f.batch(f.mallory, count: 1, path: { _ in run.checkpoints }, op: { _ in .mapSet(key: "01", CRDT.Checkpoint(contentHash: [UInt8](repeating: 1, count: 32), step: 1).value) }), .wrongType)
        let record = CRDT.Checkpoint(contentHash: [UInt8](repeating: 1, count: 32), step: 1).value
        f.expectRejected(f.batch(f.mallory, count: 1, path: { _ in run.checkpoints(f.alice.peerId) }, op: { _ in .mapSet(key: "latest", record) }), .notAuthorised)
        f.expectRejected(f.batch(f.mallory, count: 1, path: { _ in run.checkpoints(m) }, op: { _ in .mapSet(key: "10", record) }), .wrongType)
        f.expectRejected(f.batch(f.mallory, count: 1, path: { _ in run.checkpoints(m) }, op: { _ in .mapRemove(key: "latest") }), .wrongType)
        f.expectRejected(f.batch(f.mallory, count: 1, path: { _ in run.checkpoints(m) }, op: { _ in .mapSet(key: "latest", .string("not a record")) }), .wrongType)
        f.expectRejected(f.batch(f.mallory, count: 1, path: { _ in "etc/passwd" }), .unknownNamespace)
        f.expectRejected(f.batch(f.mallory, count: 1, path: { _ in "kv//x" }), .badPath)
        // Over the size limits: refused by the decoder already (a malformed message).
        for oversized in [f.batch(f.mallory, count: 1, path: { _ in "kv/" + String(repeating: "a", count: 300) }),
                          f.batch(f.mallory, count: 1, op: { _ in .register(.bytes([UInt8](repeating: 0, count: 5000))) })] {
            let out = Outcome(f.node.onMessage(CRDT.Message.push([oversized]).encoded()[...], from: f.relay, now: .zero, wall: wall0))
            guard case .malformedMessage(.overLimit)? = out.misbehaved.first?.1 else { Issue.record("not refused"); continue }
        }
        // One bad delta spoils the whole batch: the good ones before it are not applied either.
        f.expectRejected(f.batch(f.mallory, count: 5, path: { $0 == 4 ? "nope/x" : "kv/ok\($0)" }), .unknownNamespace)
        #expect(f.node.state.entries.isEmpty)
    }

    @Test func test_replayedBatch_isCountedAndNotAppliedTwice() {
        var f = Fixture()
        let b = f.batch(f.alice, op: { _ in .counter(p: 5, n: 0) })
        _ = f.node.onMessage(.push([b]), from: f.relay, now: .zero, wall: wall0)
        #expect(f.node.versions[f.alice.peerId] == 3)
        f.expectRejected(b, .replayed, reported: false)
    }

    @Test func test_gappedBatch_isHeld_andAppliedWhenTheGapFills() {
        var f = Fixture()
        let first = f.batch(f.alice, first: 1), second = f.batch(f.alice, first: 4, path: { "kv/y\($0)" })
        let out = Outcome(f.node.onMessage(.push([second]), from: f.relay, now: .zero, wall: wall0))
        #expect(out.applied.isEmpty && f.node.heldBatchCount == 1 && f.node.versions[f.alice.peerId] == 0)
        let out2 = Outcome(f.node.onMessage(.push([first]), from: f.relay, now: .zero, wall: wall0))
        #expect(out2.persisted.map(\.batch.firstSeq) == [1, 4])
        #expect(f.node.versions[f.alice.peerId] == 6 && f.node.heldBatchCount == 0)
    }

    @Test func test_heldBatches_areBounded_perAuthor() {
        var f = Fixture()
        f.node.settings.maxHeldBatchesPerAuthor = 4
        for i in 0..<4 { _ = f.node.onMessage(.push([f.batch(f.alice, first: UInt64(10 + 3 * i))]), from: f.relay, now: .zero, wall: wall0) }
        #expect(f.node.heldBatchCount == 4)
        f.expectRejected(f.batch(f.alice, first: 100), .gapped, reported: false)
        #expect(f.node.heldBatchCount == 4)
    }

    @Test func test_peerSendingTheSameBatchForever_isBounded_countedAndReportedOnce() {
        var f = Fixture()
        f.node.settings.maxDuplicatesPerInterval = 100
        let b = f.batch(f.alice)
        _ = f.node.onMessage(.push([b]), from: f.relay, now: .zero, wall: wall0)
        let bytes = CRDT.Message.push([b, b, b, b]).encoded()
        var reports = 0, persisted = 0
        for _ in 0..<500 {
            let out = Outcome(f.node.onMessage(bytes[...], from: f.relay, now: .zero, wall: wall0))
            reports += out.misbehaved.filter { if case .excessiveDuplicates = $0.1 { true } else { false } }.count
            persisted += out.persisted.count
        }
        #expect(reports == 1 && persisted == 0)
        #expect(f.node.metrics.rejected(.replayed) == 2000)
        #expect(f.node.allBatches.count == 1)
        // A new interval starts a new budget.
        _ = f.node.onTimer(.antiEntropy, now: .zero)
        let again = (0..<30).flatMap { _ in Outcome(f.node.onMessage(bytes[...], from: f.relay, now: .zero, wall: wall0)).misbehaved }
        #expect(again.count == 1)
    }

    @Test func test_twoDifferentBatchesForOneSeq_areReportedAsEquivocation() {
        var f = Fixture()
        _ = f.node.onMessage(.push([f.batch(f.alice)]), from: f.relay, now: .zero, wall: wall0)
        let other = f.batch(f.alice, op: { _ in .register(.string("other")) })
        let out = Outcome(f.node.onMessage(.push([other]), from: f.relay, now: .zero, wall: wall0))
        #expect(out.misbehaved.contains { $0.1 == .equivocation(author: f.alice.peerId, seq: 1) })
        #expect(f.node.metrics.equivocations == 1)
    }

    @Test func test_authorsBeyondTheLimit_areRejected_andTrackedPeersAreBounded() {
        var f = Fixture()
        f.node.settings.limits.maxAuthors = 2
        _ = f.node.onMessage(.push([f.batch(f.alice)]), from: f.relay, now: .zero, wall: wall0)
        _ = f.node.onMessage(.push([f.batch(f.mallory)]), from: f.relay, now: .zero, wall: wall0)
        f.expectRejected(f.batch(makeSigner(&f.rng)), .tooManyAuthors, reported: false)
        #expect(f.node.versions.authors == 2)
        f.node.settings.maxPeers = 3
        for _ in 0..<5 { _ = f.node.onPeerConnected(makeSigner(&f.rng).peerId, now: .zero) }
        #expect(f.node.connectedPeers.count == 3)
    }

    @Test func test_undecodableMessage_isReportedAsMalformed() {
        var f = Fixture()
        let out = Outcome(f.node.onMessage([9, 9, 9][...], from: f.relay, now: .zero, wall: wall0))
        #expect(out.misbehaved.first?.1 == .malformedMessage(.badTag(9)))
        #expect(f.node.metrics.malformedMessages == 1)
    }

    @Test func test_localWritesBreakingTheRules_throw_andApplyNothing() {
        var f = Fixture()
        let me = f.node.localPeer
        let theirs = CRDT.RunID(creator: f.alice.peerId)
        func refused(_ w: [CRDT.Write]) -> CRDT.WriteError? {
            do { _ = try f.node.onLocalWrite(w, now: .zero, wall: wall0); return nil } catch { return error }
        }
        #expect(refused([.config(theirs, "lr", .int(1))]) == .rejected(.notAuthorised, path: theirs.config))
        #expect(refused([.add(theirs.members, .string(f.alice.peerId.description))]) == .rejected(.notAuthorised, path: theirs.members))
        #expect(refused([.progress(theirs, of: f.alice.peerId, .init(step: 1, loss: 1))]) == .rejected(.notAuthorised, path: theirs.progress(f.alice.peerId)))
        #expect(refused([.set("tmp/x", .int(1))]) == .rejected(.unknownNamespace, path: "tmp/x"))
        #expect(refused([.set("kv/big", .bytes([UInt8](repeating: 1, count: 4097)))]) == .rejected(.valueTooLarge, path: "kv/big"))
        #expect(refused([.set("kv/" + String(repeating: "p", count: 254), .int(1))]) == .rejected(.badPath, path: "kv/" + String(repeating: "p", count: 254)))
        // Typed by first use, also within one call; the good first write is not applied either.
        #expect(refused([.set("kv/t", .int(1)), .increment("kv/t", by: 1)]) == .typeMismatch(path: "kv/t", holds: .register, write: .counter))
        #expect(f.node.state.entries.isEmpty && f.node.nextSeq == 1)
        _ = try? f.node.onLocalWrite(.join(CRDT.RunID(creator: me), as: me), now: .zero, wall: wall0)
        #expect(f.node.state.members(of: CRDT.RunID(creator: me)) == [me])
    }
}
