import LatticaCore
import Testing
@testable import LatticaCRDT

@Suite struct StatePropertyTests {
    /// Deltas of every namespace from four writers that sometimes sync (so removes and
    /// multi-value writes observe other authors), applied to a fresh state in random orders with
    /// duplicates: always the same state hash, equal to the writers' state after a full sync.
    @Test func test_stateHash_isTheSame_forEveryOrderAndDuplicationOfTheDeltas() {
        let seed = testSeed(51)
        var rng = SeededRandom(seed: seed)
        let signers = (0..<4).map { _ in makeSigner(&rng) }
        var nodes = signers.enumerated().map { CRDT.Instance(signer: $1, seed: UInt64($0)) }
        let load = Workload(creators: signers.map(\.peerId), peers: signers.map(\.peerId))
        for step in 0..<200 {
            let i = rng.below(4)
            if rng.chance(0.25) {
                let j = rng.below(4)
                _ = nodes[i].onMessage(.push(nodes[j].allBatches), from: signers[j].peerId, now: .zero, wall: wall0)
                continue
            }
            let wall = CRDT.WallTime(milliseconds: wall0.milliseconds + UInt64(step / 4))
            _ = try? nodes[i].onLocalWrite([load.randomWrite(&rng, me: signers[i].peerId)], now: .zero, wall: wall)
        }
        let deltas = nodes.flatMap { n in n.batches(of: n.localPeer).flatMap { b in b.deltas.map { (b.author, $0) } } }
        #expect(deltas.count > 100, "seed \(seed)")
        for i in 0..<4 { for j in 0..<4 where i != j {
            _ = nodes[i].onMessage(.push(nodes[j].batches(of: signers[j].peerId)), from: signers[j].peerId, now: .zero, wall: wall0)
        } }
        let reference = nodes[0].state.stateHash
        #expect(nodes.allSatisfy { $0.state.stateHash == reference }, "seed \(seed)")
        for _ in 0..<10 {
            var shuffled = deltas + deltas.filter { _ in rng.chance(0.2) }
            shuffled.shuffle(using: &rng)
            var s = CRDT.State()
            for (author, d) in shuffled { s.apply(d, author: author) }
            #expect(s.stateHash == reference, "seed \(seed)")
        }
    }
}
