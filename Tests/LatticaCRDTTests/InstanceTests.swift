import LatticaCore
import Testing
@testable import LatticaCRDT

@Suite struct InstanceTests {
    struct Pair {
        var rng = SeededRandom(seed: testSeed(31))
        var a: CRDT.Instance, b: CRDT.Instance
        let sa: CRDT.Signer, sb: CRDT.Signer

        init() {
            sa = makeSigner(&rng); sb = makeSigner(&rng)
            a = CRDT.Instance(signer: sa, seed: 1)
            b = CRDT.Instance(signer: sb, seed: 2)
        }

        /// Delivers messages back and forth until none is left; returns the bytes that moved.
        @discardableResult
        mutating func exchange(_ first: [CRDT.Directive], from: PeerId) -> Int {
            var queue = Outcome(first).sends.map { ($0.0, from, $0.1) }
            var bytes = 0
            while let (m, sender, to) = queue.first {
                queue.removeFirst()
                let encoded = m.encoded()
                bytes += encoded.count
                let out: [CRDT.Directive]
                if to == a.localPeer { out = a.onMessage(encoded[...], from: sender, now: .zero, wall: wall0) }
                else { out = b.onMessage(encoded[...], from: sender, now: .zero, wall: wall0) }
                queue += Outcome(out).sends.map { ($0.0, to, $0.1) }
            }
            return bytes
        }

        mutating func writeOnA(_ count: Int, batch: Int = 100) {
            for s in stride(from: 0, to: count, by: batch) {
                _ = try! a.onLocalWrite((s..<min(count, s + batch)).map { .set("kv/k\($0)", .int(Int64($0))) }, now: .zero, wall: wall0)
            }
        }
    }

    @Test func test_localWrite_isSignedOncePerBatch_persistedBeforeItIsPushed_toEveryConnectedPeer() throws {
        var p = Pair()
        var r = SeededRandom(seed: 3)
        let c = makeSigner(&r).peerId
        _ = p.a.onPeerConnected(p.sb.peerId, now: .zero)
        _ = p.a.onPeerConnected(c, now: .zero)
        let ds = try p.a.onLocalWrite([.set("kv/a", .int(1)), .add("kv/s", .string("x")), .increment("kv/n", by: 2)], now: .zero, wall: wall0)
        let out = Outcome(ds)
        #expect(out.persisted.count == 1 && out.persisted[0].batch.deltas.count == 3)
        #expect(Set(out.persisted[0].entries.map(\.path)) == ["kv/a", "kv/s", "kv/n"])
        let firstPush = ds.firstIndex { if case .send = $0 { true } else { false } }!
        let persist = ds.firstIndex { if case .persist = $0 { true } else { false } }!
        #expect(persist < firstPush)
        #expect(Set(out.sends.map(\.1)) == [p.sb.peerId, c])
        #expect(p.a.nextSeq == 4)
    }

    @Test func test_largeLocalWrites_areSplitIntoBatchesAndMessagesThatFitTheLimits() throws {
        var p = Pair()
        _ = p.a.onPeerConnected(p.sb.peerId, now: .zero)
        let big = CRDT.Value.bytes([UInt8](repeating: 9, count: 4000))
        let out = Outcome(try p.a.onLocalWrite((0..<3000).map { .set("kv/big/\($0)", big) }, now: .zero, wall: wall0))
        #expect(out.persisted.count > 10)
        #expect(out.persisted.allSatisfy { $0.batch.encoded.count <= p.a.settings.localBatchBytes + 4200 })
        #expect(out.sends.count > 1)
        for (m, _) in out.sends {
            let bytes = m.encoded()
            #expect(bytes.count <= p.a.settings.limits.maxMessageBytes)
            _ = p.b.onMessage(bytes[...], from: p.sa.peerId, now: .zero, wall: wall0)
        }
        #expect(p.b.metrics.malformedMessages == 0 && p.b.versions[p.sa.peerId] == 3000)
    }

    @Test func test_antiEntropy_sendsExactlyWhatThePeerLacks_soBytesGrowWithTheDifference() {
        var p = Pair()
        p.writeOnA(1000)
        // b already has the first 900 deltas (restored from a's first 9 batches).
        let prefix = Array(p.a.allBatches.prefix(9))
        p.b = CRDT.Instance(signer: p.sb, seed: 2, restoring: prefix)
        _ = p.a.onPeerConnected(p.sb.peerId, now: .zero)
        let small = p.exchange(p.b.onPeerConnected(p.sa.peerId, now: .zero), from: p.sb.peerId)
        #expect(p.b.state.stateHash == p.a.state.stateHash)
        // A fresh node lacks ten times as much and receives about ten times the bytes.
        var fresh = Pair()
        fresh.writeOnA(1000)
        _ = fresh.a.onPeerConnected(fresh.sb.peerId, now: .zero)
        let big = fresh.exchange(fresh.b.onPeerConnected(fresh.sa.peerId, now: .zero), from: fresh.sb.peerId)
        #expect(fresh.b.state.stateHash == fresh.a.state.stateHash)
        #expect(big > 8 * small && big < 12 * small, "\(small) vs \(big) bytes")
        // In sync: one exchange is a single version vector, and nothing comes back.
        let idle = p.exchange(p.b.onTimer(.antiEntropy, now: .zero), from: p.sb.peerId)
        #expect(idle < 100, "\(idle) bytes")
        #expect(p.b.syncStatus().map(\.lag) == [0])
    }

    @Test func test_syncStatus_showsWhatEachSideLacks_asOfThePeersLastVector() {
        var p = Pair()
        p.writeOnA(1000)
        _ = p.a.onPeerConnected(p.sb.peerId, now: .zero)
        _ = p.b.onPeerConnected(p.sa.peerId, now: .zero)
        #expect(p.b.syncStatus().first?.lastSync == nil)
        let summary = Outcome(p.b.onTimer(.antiEntropy, now: .zero)).sends
        let reply = Outcome(p.a.onMessage(summary[0].0, from: p.sb.peerId, now: .zero, wall: wall0)).sends
        guard case .versions(_, true)? = reply.first?.0 else { Issue.record("expected a's versions"); return }
        let at = Instant(nanoseconds: 5)
        _ = p.b.onMessage(reply[0].0, from: p.sa.peerId, now: at, wall: wall0)
        #expect(p.b.syncStatus() == [CRDT.PeerStatus(peer: p.sa.peerId, lastSync: at, theyLack: 0, weLack: 1000)])
        #expect(p.b.syncStatus().first?.lag == 1000)
    }

    @Test func test_lateJoiner_catchesUpOnMoreThanOneMessageOfBatches() {
        var p = Pair()
        p.a.settings.limits.maxBatchesPerMessage = 4
        p.writeOnA(2000, batch: 50)
        _ = p.a.onPeerConnected(p.sb.peerId, now: .zero)
        p.exchange(p.b.onPeerConnected(p.sa.peerId, now: .zero), from: p.sb.peerId)
        #expect(p.b.versions[p.sa.peerId] == 2000)
        #expect(p.b.state.stateHash == p.a.state.stateHash)
    }

    @Test func test_syncNow_opensAnExchangeWithEveryConnectedPeer_andAppliedCarriesTheNewDeltas() throws {
        var p = Pair()
        var r = SeededRandom(seed: 4)
        let c = makeSigner(&r).peerId
        _ = p.b.onPeerConnected(p.sa.peerId, now: .zero)
        _ = p.b.onPeerConnected(c, now: .zero)
        let sends = Outcome(p.b.syncNow(now: .zero)).sends
        #expect(Set(sends.map(\.1)) == [p.sa.peerId, c])
        #expect(sends.allSatisfy { if case .summary(_, true) = $0.0 { true } else { false } })
        p.writeOnA(150, batch: 100)
        let out = Outcome(p.b.onMessage(.push(p.a.allBatches), from: p.sa.peerId, now: .zero, wall: wall0))
        #expect(out.applied.map(\.deltas.count) == [100, 50])
        #expect(out.applied.last?.deltas.first?.seq == 101)
    }

    @Test func test_catchUpOnBatchesWeRefuse_stopsInsteadOfAskingForeverAgain() {
        var p = Pair()
        p.a.settings.limits.maxBatchesPerMessage = 2
        // a's batches are from an hour ahead of b's clock: b refuses them (futureClock).
        for s in 0..<10 {
            _ = try! p.a.onLocalWrite(.set("kv/f\(s)", .int(1)), now: .zero, wall: CRDT.WallTime(milliseconds: wall0.milliseconds + 3_600_000))
        }
        _ = p.a.onPeerConnected(p.sb.peerId, now: .zero)
        let bytes = p.exchange(p.b.onPeerConnected(p.sa.peerId, now: .zero), from: p.sb.peerId)
        #expect(p.b.versions.total == 0 && p.b.metrics.rejected(.futureClock) == 2)
        #expect(bytes < 2000, "\(bytes) bytes")
    }

    @Test func test_restart_restoresState_andContinuesTheSequence() throws {
        var p = Pair()
        var persisted: [CRDT.SignedBatch] = []
        for i in 0..<5 {
            let out = try p.a.onLocalWrite([.add("kv/set", .int(Int64(i))), .remove("kv/set", .int(Int64(i - 1)))], now: .zero, wall: wall0)
            persisted += Outcome(out).persisted.map(\.batch)
        }
        let restored = CRDT.Instance(signer: p.sa, seed: 9, restoring: persisted.shuffled(using: &p.rng))
        #expect(restored.state.stateHash == p.a.state.stateHash)
        #expect(restored.nextSeq == 11 && restored.clock == p.a.clock)
        #expect(restored.state.read("kv/set") == .set([.int(4)]))
    }

    @Test func test_concurrentFirstWritesOfDifferentKinds_convergeToTheEarlierKind() throws {
        var p = Pair()
        _ = try p.a.onLocalWrite(.increment("kv/x", by: 5), now: .zero, wall: wall0)
        _ = try p.b.onLocalWrite(.set("kv/x", .string("hello")), now: .zero, wall: CRDT.WallTime(milliseconds: wall0.milliseconds + 10))
        _ = p.a.onPeerConnected(p.sb.peerId, now: .zero)
        p.exchange(p.b.onPeerConnected(p.sa.peerId, now: .zero), from: p.sb.peerId)
        #expect(p.a.state.stateHash == p.b.state.stateHash)
        #expect(p.a.state.read("kv/x") == .counter(5) && p.b.state.read("kv/x") == .counter(5))
        #expect(p.b.metrics.typeConflicts == 1)
        #expect(throws: CRDT.WriteError.typeMismatch(path: "kv/x", holds: .counter, write: .register)) {
            try p.b.onLocalWrite(.set("kv/x", .string("again")), now: .zero, wall: wall0)
        }
    }

    @Test func test_typedAccessors_readBackWhatWasWritten() throws {
        var p = Pair()
        let me = p.sa.peerId, other = p.sb.peerId
        let run = CRDT.RunID(creator: me, name: "mnist")
        let hash = [UInt8](repeating: 7, count: 32)
        _ = try p.a.onLocalWrite([
            .config(run, "model", .string("mlp-784-128-10")),
            .config(run, "aggregator", .string("bristle")),
            .join(run, as: me),
            .checkpoint(run, of: me, CRDT.Checkpoint(contentHash: hash, step: 290, metrics: ["accuracy": 0.90])),
            .checkpoint(run, of: me, CRDT.Checkpoint(contentHash: hash, step: 300, metrics: ["accuracy": 0.91])),
            .checkpoint(run, of: me, merged: true, CRDT.Checkpoint(contentHash: hash, step: 300, metrics: ["accuracy": 0.93])),
            .progress(run, of: me, CRDT.Progress(step: 310, loss: 0.25, samples: 64)),
            .report(run, by: me, against: other, CRDT.Report(reason: "non-finite model", step: 3, evidence: [hash])),
        ], now: .zero, wall: wall0)
        let s = p.a.state
        #expect(s.config(of: run) == ["model": .string("mlp-784-128-10"), "aggregator": .string("bristle")])
        #expect(s.members(of: run) == [me])
        // The latest record replaced the one before (a node's map does not grow with the run);
        // the merged model is the version after it.
        #expect(s.checkpoints(of: run).map(\.version) == [300, 301] && s.checkpoints(of: run).allSatisfy { $0.author == me })
        #expect(s.checkpoints(of: run).map(\.checkpoint.metrics) == [["accuracy": 0.91], ["accuracy": 0.93]])
        #expect(s.map(run.checkpoints(me))?.registers.count == 2)
        #expect(s.progress(of: run, peer: me) == CRDT.Progress(step: 310, loss: 0.25, samples: 64))
        #expect(s.reports(in: run, by: me).map(\.accused) == [other])
        #expect(s.reports(in: run, against: other).map(\.reporter) == [me])
        _ = try p.a.onLocalWrite([.leave(run, as: me), .withdrawReport(run, by: me, against: other)], now: .zero, wall: wall0)
        #expect(p.a.state.members(of: run).isEmpty && p.a.state.reports(in: run, against: other).isEmpty)
        #expect(run.creator == me && CRDT.RunID(run.description) == run && CRDT.RunID("nope") == nil)
    }

    @Test func test_stateHash_differs_whenAnyValueDiffers_andIsEqualForEqualStates() throws {
        var p = Pair()
        _ = try p.a.onLocalWrite([.set("kv/a", .int(1)), .mapSet("kv/m", key: "k", .bool(true))], now: .zero, wall: wall0)
        let copy = CRDT.Instance(signer: p.sb, seed: 3, restoring: p.a.allBatches)
        #expect(copy.state.stateHash == p.a.state.stateHash)
        _ = try p.a.onLocalWrite(.mapSet("kv/m", key: "k", .bool(false)), now: .zero, wall: wall0)
        #expect(copy.state.stateHash != p.a.state.stateHash)
    }
}
