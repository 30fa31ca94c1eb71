import LatticaCore
import Testing
@testable import LatticaCRDT

@Suite struct CompactionTests {
    /// Writes as the training and the CLI make them: overwrites of a few registers, map entries
    /// and counters (what compaction drops), and the whole workload (sets, multi-value registers,
    /// type conflicts on shared `kv/` keys, run namespaces).
    static func randomWrites(_ rng: inout SeededRandom, load: Workload, me: PeerId) -> [CRDT.Write] {
        (0...rng.below(3)).map { _ in
            switch rng.below(4) {
            case 0: .set("kv/hot/\(rng.below(3))", .int(Int64(rng.below(1000))))
            case 1: .mapSet("kv/hotmap", key: "k\(rng.below(3))", .int(Int64(rng.below(1000))))
            default: load.randomWrite(&rng, me: me)
            }
        }
    }

    /// One seeded run: random writes on 3–5 nodes, random delivery (duplicates, 5 % lost),
    /// anti-entropy, restarts and, if `compacting`, random compactions; then settle.
    static func run(seed: UInt64, compacting: Bool) -> (world: CompactionWorld, rounds: Int?) {
        var rng = SeededRandom(seed: seed)
        let n = 3 + rng.below(3)
        var w = CompactionWorld(nodes: n, settings: CRDT.Settings(), seed: seed)
        let load = Workload(creators: Array(w.signers.prefix(2).map(\.peerId)), peers: w.signers.map(\.peerId))
        for _ in 0..<400 {
            let i = rng.below(n)
            switch rng.below(100) {
            case 0..<40: w.write(i, randomWrites(&rng, load: load, me: w.signers[i].peerId))
            case 40..<85: w.deliverOne()
            case 85..<92: w.antiEntropy(i)
            case 92..<98: if compacting { w.compact(i) }
            default: w.restart(i)
            }
        }
        let rounds = w.settle()
        return (w, rounds)
    }

    @Test func test_randomConcurrentWrites_withRandomCompactionsAndDelivery_convergeToTheJoinOfEveryWrite() {
        let base = testSeed(700)
        var totals = (compactions: 0, adopted: 0, held: 0, dropped: 0)
        defer { print("compaction property test, 24 seeds: \(totals.compactions) compactions, \(totals.adopted) adopted by peers, \(totals.held) batches held for a gap, logs \(totals.dropped) deltas smaller than the join") }
        for seed in base..<(base + 24) {
            for compacting in [true, false] {
                let (w, rounds) = Self.run(seed: seed, compacting: compacting)
                let ref = w.reference
                let refHash = ref.state.stateHash
                let what = "seed \(seed) (LATTICA_CRDT_SEED=\(seed)), compaction \(compacting ? "on" : "off")"
                #expect(rounds != nil, "\(what): no convergence")
                let lagging = w.nodes.indices.filter { w.nodes[$0].versions != ref.versions }
                let differing = w.nodes.indices.filter { w.nodes[$0].state.stateHash != refHash }
                #expect(lagging.isEmpty, "\(what): nodes \(lagging) lack batches")
                #expect(differing.isEmpty, "\(what): nodes \(differing) differ from the join of every write")
                #expect(w.nodes.allSatisfy { $0.metrics.equivocations == 0 }, "\(what): an honest compaction read as a contradiction")
                // No write lost: every LWW write is in the state or superseded by a larger stamp.
                let state = w.nodes[0].state
                let lost = w.written.flatMap { b in b.deltas.filter { !Self.presentOrSuperseded($0, author: b.author, in: state) } }
                #expect(lost.isEmpty, "\(what): \(lost.count) writes lost, the first \(lost.first.map { "\($0.path) #\($0.seq)" } ?? "")")
                if compacting {
                    totals.compactions += w.nodes.reduce(0) { $0 + $1.metrics.compactions }
                    totals.adopted += w.nodes.reduce(0) { $0 + $1.metrics.compactionsAdopted }
                    totals.held += w.nodes.reduce(0) { $0 + $1.metrics.batchesHeld }
                    totals.dropped += w.nodes.reduce(0) { $0 + ref.logDeltas - $1.logDeltas }
                    let compactions = w.nodes.reduce(0) { $0 + $1.metrics.compactions }
                    #expect(compactions > 0, "\(what)")
                    #expect(w.nodes.allSatisfy { $0.logDeltas < ref.logDeltas }, "\(what): the logs did not shrink")
                }
                if rounds == nil || !lagging.isEmpty || !differing.isEmpty || !lost.isEmpty { return }
            }
        }
    }

    static func presentOrSuperseded(_ d: CRDT.Delta, author: PeerId, in state: CRDT.State) -> Bool {
        let stamp = CRDT.Stamp(time: d.time, author: author)
        guard let variant = state.entries[d.path]?.variants.first(where: { $0.object.kind == d.op.kind }) else { return false }
        switch (d.op, variant.object) {
        case (.register, .register(let r)): return r.stamp.map { $0 >= stamp } ?? false
        case (.mapSet(let k, _), .map(let m)), (.mapRemove(let k), .map(let m)): return m.registers[k]?.stamp.map { $0 >= stamp } ?? false
        default: return variant.first <= stamp
        }
    }

    @Test func test_restartFromPersistedRows_afterCompaction_restoresStateLogAndNextSeq() throws {
        var w = CompactionWorld(nodes: 2, settings: CRDT.Settings(), seed: testSeed(701))
        let a = w.signers[0].peerId
        for k in 0..<300 { w.write(0, [.set("kv/p/\(k % 5)", .int(Int64(k)))]) }
        w.write(0, [.add("kv/s", .string("x"))])
        w.deliverAll()
        let rowsBefore = w.rows[0].count
        w.compact(0)
        w.deliverAll()
        #expect(w.rows[0].count < rowsBefore / 10)
        #expect(w.nodes[1].batches(of: a).count == w.nodes[0].batches(of: a).count)
        for i in 0..<2 {
            let before = w.nodes[i]
            w.restart(i)
            w.deliverAll()
            #expect(w.nodes[i].state.stateHash == before.state.stateHash)
            #expect(w.nodes[i].versions == before.versions && w.nodes[i].nextSeq == before.nextSeq)
            #expect(w.nodes[i].logBytes == before.logBytes && w.nodes[i].logDeltas == before.logDeltas)
            #expect(w.nodes[i].metrics.rejected.isEmpty)
        }
        // Writing after the restart goes on from the compacted log's last seq.
        w.write(0, [.set("kv/p/0", .int(-1))])
        w.deliverAll()
        #expect(w.nodes[1].versions[a] == 302 && w.nodes[1].state.stateHash == w.nodes[0].state.stateHash)
        #expect(w.nodes[0].state.stateHash == w.reference.state.stateHash)
    }

    @Test func test_longRunOfOverwrites_keepsTheLogBounded_onTheAuthorAndItsPeer() {
        var bounded = CRDT.Settings()
        bounded.compactionMinBatches = 32
        var off = CRDT.Settings()
        off.compactionMinBatches = 0
        var most: [Int] = []
        for settings in [bounded, off] {
            var w = CompactionWorld(nodes: 2, settings: settings, seed: testSeed(702))
            let run = CRDT.RunID(creator: w.signers[0].peerId, name: "soak")
            var peak = 0
            for k in 0..<10_000 {
                let p = CRDT.Progress(step: UInt64(k), loss: 1 / Double(k + 1), samples: 64)
                w.write(0, k % 2 == 0 ? [.progress(run, of: w.signers[0].peerId, p)] : [.set("kv/lr/\(k % 7)", .int(Int64(k)))])
                if k % 10 == 0 { w.take(w.nodes[0].onTimer(.compaction, now: w.now), at: 0) }
                w.deliverAll()
                peak = max(peak, w.nodes[0].logBytes, w.nodes[1].logBytes)
            }
            print("log after 10,000 overwrites, compaction \(settings.compactionMinBatches > 0 ? "on" : "off"): peak \(peak) bytes,",
                  "author \(w.nodes[0].logBytes) bytes / \(w.nodes[0].logDeltas) deltas, peer \(w.nodes[1].logBytes) bytes")
            #expect(w.nodes[1].state.stateHash == w.nodes[0].state.stateHash)
            most.append(peak)
        }
        // 8 live paths: at most ~42 one-delta batches between checks, then one compacted batch.
        #expect(most[0] < 16_384)
        #expect(most[1] > 100 * most[0])
    }

    @Test func test_compactedBatch_neverResurrectsAnOverwrittenValue_orLosesAConcurrentOne() throws {
        var w = CompactionWorld(nodes: 4, settings: CRDT.Settings(), seed: testSeed(703))
        let (a, b) = (0, 1)
        for k in 0..<10 { w.write(a, [.set("kv/x", .int(Int64(k)))]) }
        w.deliverAll()
        // b overwrites later (larger stamp); node 2 hears it, a does not yet.
        w.step += 100
        w.write(b, [.set("kv/x", .string("b wins"))])
        w.deliverAll(except: [a, 3])
        // a compacts without b's write: it keeps its newest and its first write.
        w.compact(a)
        #expect(w.nodes[a].batches(of: w.signers[a].peerId).map(\.deltas.count) == [2])
        w.deliverAll()
        guard case .register(let x, _)? = w.nodes[2].state.read("kv/x") else { Issue.record("kv/x is not a register"); return }
        #expect(x == .string("b wins"))
        #expect(w.nodes[2].metrics.compactionsAdopted == 1)
        // a hears b and compacts again: now its only remaining delta is its first write; a fresh
        // node (3 restarted empty) learns kv/x from the compacted batch and b's log.
        _ = w.settle()
        w.compact(a)
        #expect(w.nodes[a].batches(of: w.signers[a].peerId).map(\.deltas.count) == [1])
        w.rows[3] = []
        w.restart(3)
        #expect(w.settle() != nil)
        for i in 0..<4 { #expect(w.nodes[i].state.stateHash == w.reference.state.stateHash, "node \(i)") }
        #expect(w.nodes.allSatisfy { $0.metrics.equivocations == 0 && $0.metrics.rejected(.conflicting) == 0 })
    }
}
