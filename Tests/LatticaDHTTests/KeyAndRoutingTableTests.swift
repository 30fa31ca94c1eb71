import LatticaCore
import Testing
@testable import LatticaDHT

@Suite struct KeyAndRoutingTableTests {
    @Test func key_isSHA256OfTheKeyBytes() {
        // FIPS 180-2 test vector: SHA-256("abc").
        let k = DHT.Key(hashing: Array("abc".utf8))
        #expect(k.bytes.map { UInt8($0) }.prefix(4) == [0xba, 0x78, 0x16, 0xbf])
        #expect(k.bytes.suffix(4) == [0xf2, 0x00, 0x15, 0xad])
        var rng = SeededRandom(seed: 1)
        let peer = KadSim.makePeer(&rng)
        #expect(DHT.Key(peer: peer) == DHT.Key(digest: PureSHA256.hash(peer.multihash)))
    }

    @Test func distance_isXorAndSymmetric_andLeadingZerosGiveTheBucket() {
        var rng = SeededRandom(seed: 2)
        for _ in 0..<200 {
            let a = DHT.Key(w0: rng.next(), w1: rng.next(), w2: rng.next(), w3: rng.next())
            let b = DHT.Key(w0: rng.next() >> (rng.next() % 64), w1: rng.next(), w2: rng.next(), w3: rng.next())
            #expect(a.distance(to: b) == b.distance(to: a))
            #expect(a.distance(to: a) == .zero)
            #expect(a.distance(to: .zero) == a)
            let d = a.distance(to: b)
            let lz = d.leadingZeroBitCount
            if lz < 256 {
                #expect(d.bit(lz))
                for i in 0..<lz { #expect(!d.bit(i)) }
                #expect(a.bit(lz) != b.bit(lz))
            }
        }
        #expect(DHT.Key.zero.leadingZeroBitCount == 256)
    }

    func randomEntries(_ n: Int, seed: UInt64) -> [(PeerId, DHT.Key)] {
        var rng = SeededRandom(seed: seed)
        return (0..<n).map { _ in let p = KadSim.makePeer(&rng); return (p, DHT.Key(peer: p)) }
    }

    @Test func closest_matchesBruteForce_forRandomTablesAndTargets() {
        var rng = SeededRandom(seed: 3)
        let local = DHT.Key(w0: rng.next(), w1: rng.next(), w2: rng.next(), w3: rng.next())
        var table = DHT.RoutingTable(localKey: local, k: 20)
        var inTable: [(PeerId, DHT.Key)] = []
        for (p, k) in randomEntries(3000, seed: 4) {
            if table.insertOrUpdate(p, key: k, addresses: [], now: .zero) == .inserted { inTable.append((p, k)) }
        }
        #expect(table.count == inTable.count)
        #expect(table.count < 3000)  // far buckets filled up: newcomers were cached, not inserted
        for trial in 0..<300 {
            let target: DHT.Key = trial % 3 == 0 ? local.flipping(bit: Int(rng.next() % 12))
                : DHT.Key(w0: rng.next(), w1: rng.next(), w2: rng.next(), w3: rng.next())
            let n = 1 + Int(rng.next() % 40)
            let got = table.closest(to: target, count: n).map(\.peer)
            let want = inTable.sorted { $0.1.distance(to: target) < $1.1.distance(to: target) }.prefix(n).map(\.0)
            #expect(got == Array(want))
        }
        // Excluding the requester.
        let someone = inTable[7]
        #expect(!table.closest(to: someone.1, count: 20, excluding: someone.0).contains { $0.peer == someone.0 })
    }

    /// `n` peers whose keys fall in bucket 0 of the zero key (first bit set).
    func farHalfPeers(_ n: Int, seed: UInt64) -> [(PeerId, DHT.Key)] {
        var peers: [(PeerId, DHT.Key)] = []
        var rng = SeededRandom(seed: seed)
        while peers.count < n {
            let p = KadSim.makePeer(&rng)
            let k = DHT.Key(peer: p)
            if k.bit(0) { peers.append((p, k)) }
        }
        return peers
    }

    @Test func fullBucket_cachesNewcomer_andReplacesLeastRecentlySeenOnlyIfItsProbeFails() {
        let local = DHT.Key.zero
        var table = DHT.RoutingTable(localKey: local, k: 3, replacementCacheSize: 2)
        // All in bucket 0 (first bit set).
        let peers = farHalfPeers(6, seed: 5)
        for i in 0..<3 { #expect(table.insertOrUpdate(peers[i].0, key: peers[i].1, addresses: [], now: Instant(nanoseconds: Int64(i))) == .inserted) }
        guard case .cached(let probe?) = table.insertOrUpdate(peers[3].0, key: peers[3].1, addresses: [], now: Instant(nanoseconds: 10)) else {
            Issue.record("expected a probe"); return
        }
        #expect(probe.peer == peers[0].0)  // least recently seen
        #expect(table.insertOrUpdate(peers[4].0, key: peers[4].1, addresses: [], now: Instant(nanoseconds: 11)) == .cached(probe: nil))
        // Probe succeeds: the old peer stays, moved to most-recently-seen.
        _ = table.probeFinished(peers[0].0, key: peers[0].1, alive: true, now: Instant(nanoseconds: 12))
        #expect(table.contains(peers[0].0, key: peers[0].1))
        #expect(!table.contains(peers[3].0, key: peers[3].1))
        // Next newcomer probes peers[1] (now the least recently seen); it fails → replaced by the newest cached.
        guard case .cached(let probe2?) = table.insertOrUpdate(peers[5].0, key: peers[5].1, addresses: [], now: Instant(nanoseconds: 13)) else {
            Issue.record("expected a second probe"); return
        }
        #expect(probe2.peer == peers[1].0)
        let r = table.probeFinished(peers[1].0, key: peers[1].1, alive: false, now: Instant(nanoseconds: 14))
        #expect(r.removed == peers[1].0)
        #expect(r.added == peers[5].0)
        #expect(table.count == 3)
    }

    @Test func disconnectedEntry_givesWayToANewcomer_inAFullBucket_withoutAProbe() {
        var table = DHT.RoutingTable(localKey: .zero, k: 2, replacementCacheSize: 2)
        let peers = farHalfPeers(4, seed: 6)
        for i in 0..<2 { #expect(table.insertOrUpdate(peers[i].0, key: peers[i].1, addresses: [], now: .zero) == .inserted) }
        table.markDisconnected(peers[1].0, key: peers[1].1)
        #expect(table.entry(for: peers[1].0, key: peers[1].1)?.connected == false)
        #expect(table.insertOrUpdate(peers[2].0, key: peers[2].1, addresses: [], now: .zero) == .replaced(removed: peers[1].0))
        #expect(!table.contains(peers[1].0, key: peers[1].1) && table.contains(peers[2].0, key: peers[2].1) && table.count == 2)
        // With every entry connected, the old rule holds: cache the newcomer and probe.
        guard case .cached(probe: _?) = table.insertOrUpdate(peers[3].0, key: peers[3].1, addresses: [], now: .zero) else {
            Issue.record("expected a probe"); return
        }
        // Hearing from a disconnected peer again marks it connected.
        table.markDisconnected(peers[0].0, key: peers[0].1)
        #expect(table.insertOrUpdate(peers[0].0, key: peers[0].1, addresses: [], now: .zero) == .updated)
        #expect(table.entry(for: peers[0].0, key: peers[0].1)?.connected == true)
    }

    @Test func failingPeer_staysWithoutReplacement_untilMaxFailures() {
        var table = DHT.RoutingTable(localKey: .zero, k: 20)
        let (p, k) = randomEntries(1, seed: 6)[0]
        _ = table.insertOrUpdate(p, key: k, addresses: [], now: .zero)
        #expect(table.recordFailure(p, key: k, maxFailures: 3).removed == nil)
        #expect(table.recordFailure(p, key: k, maxFailures: 3).removed == nil)
        _ = table.insertOrUpdate(p, key: k, addresses: [], now: .zero)  // a success resets the count
        #expect(table.recordFailure(p, key: k, maxFailures: 3).removed == nil)
        #expect(table.recordFailure(p, key: k, maxFailures: 3).removed == nil)
        #expect(table.recordFailure(p, key: k, maxFailures: 3).removed == p)
        #expect(table.count == 0)
    }
}
