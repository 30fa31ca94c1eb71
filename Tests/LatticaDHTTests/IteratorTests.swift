import LatticaCore
import Testing
@testable import LatticaDHT

@Suite struct IteratorTests {
    typealias Seed = (peer: PeerId, key: DHT.Key, addresses: [[UInt8]])

    func universe(_ n: Int, seed: UInt64) -> [Seed] {
        var rng = SeededRandom(seed: seed)
        return (0..<n).map { _ in let p = KadSim.makePeer(&rng); return (p, DHT.Key(peer: p), []) }
    }

    @Test func iterator_keepsAtMostAlphaInFlight_andFinishesWhenTheKClosestAnswered() {
        let all = universe(200, seed: 11)
        let target = DHT.Key(hashing: [1, 2, 3])
        var it = DHT.ClosestPeersIterator(target: target, seeds: Array(all.prefix(10)), alpha: 3, numResults: 5)
        var contacted = Set<PeerId>()
        var rounds = 0
        while true {
            var batch: [DHT.ClosestPeersIterator.Candidate] = []
            while case .contact(let c) = it.next() { batch.append(c) }
            #expect(it.inFlightCount <= 5)  // alpha, or k once stalled
            if batch.isEmpty { break }
            for c in batch {
                #expect(contacted.insert(c.peer).inserted)  // never twice
                // Each peer knows the 5 closest to the target among a random 50.
                let known = all.filter { $0.peer != c.peer }.shuffledDeterministically(seed: UInt64(rounds)).prefix(50)
                let closer = known.sorted { $0.key.distance(to: target) < $1.key.distance(to: target) }.prefix(5)
                it.onSuccess(c.peer, closer: Array(closer))
            }
            rounds += 1
        }
        #expect(it.isFinished)
        let result = it.result
        #expect(result.count == 5)
        // Termination rule: every candidate closer than the 5th result answered.
        let fifth = result.last!.distance
        for c in it.candidates where c.distance < fifth { #expect(c.state == .succeeded) }
    }

    @Test func iterator_skipsFailedPeers_andFinishesWhenNobodyIsLeft() {
        let all = universe(4, seed: 12)
        var it = DHT.ClosestPeersIterator(target: .zero, seeds: all, alpha: 2, numResults: 20)
        var seen = 0
        while true {
            guard case .contact(let c) = it.next() else { break }
            seen += 1
            it.onFailure(c.peer)
        }
        #expect(seen == 4)
        #expect(it.isFinished)
        #expect(it.result.isEmpty)
    }

    @Test func disjointLookup_neverContactsAPeerOnTwoPaths() {
        let all = universe(300, seed: 13)
        let target = DHT.Key(hashing: [9])
        var lookup = DHT.DisjointLookup(target: target, seeds: Array(all.prefix(20)), paths: 4, alpha: 3, numResults: 10)
        var owner: [PeerId: Int] = [:]
        var rng = SeededRandom(seed: 14)
        while !lookup.isFinished {
            let next = lookup.nextContacts()
            if next.isEmpty { break }
            for (path, c) in next {
                #expect(owner[c.peer] == nil)
                owner[c.peer] = path
                // Everybody names the same closest peers: they may only be used by one path.
                let closer = all.sorted { $0.key.distance(to: target) < $1.key.distance(to: target) }.prefix(8)
                    .filter { $0.peer != c.peer } + [all[Int(rng.next() % 300)]]
                lookup.onSuccess(path: path, peer: c.peer, closer: closer)
            }
        }
        #expect(Set(owner.values).count == 4)
        #expect(lookup.result.count == 10)
    }
}

extension Array {
    func shuffledDeterministically(seed: UInt64) -> [Element] {
        var rng = SeededRandom(seed: seed)
        return shuffled(using: &rng)
    }
}
