import LatticaCore
import Testing
@testable import LatticaDHT

/// Whole-network behaviour of `DHT.Instance` in the deterministic `KadSim` network.
/// Each scenario replays bit for bit from its seed.
@Suite struct SimulationTests {
    static func randomKey(_ rng: inout SeededRandom) -> [UInt8] {
        (0..<16).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    static func median(_ xs: [Int]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? Double(s[s.count / 2]) : Double(s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    static func log2(_ x: Double) -> Double {
        // x = m·2^e, m in [1,2): log2 x = e + ln(m)/ln 2 (series), pure Swift.
        let e = Double(x.exponent), m = x.significand
        let y = (m - 1) / (m + 1), y2 = y * y
        var term = y, sum = 0.0, k = 1.0
        for _ in 0..<40 { sum += term / k; term *= y2; k += 2 }
        return e + 2 * sum / 0.693_147_180_559_945_3
    }

    @Test func lookups_findTheTrueKClosest_in10000Nodes_withFewHops() {
        var sim = KadSim(seed: 1001)
        for _ in 0..<10_000 { sim.addNode() }
        sim.prefillRoutingTables()
        var rng = SeededRandom(seed: 1002)
        var hops: [Int] = []
        var exact = 0
        let lookups = 200
        for _ in 0..<lookups {
            let origin = Int(rng.next() % 10_000)
            let key = Self.randomKey(&rng)
            let q = sim.start(origin) { $0.findNode(key, now: $1) }
            guard let (result, stats) = sim.runUntilFinished(node: origin, query: q), case .closestPeers(let found) = result else {
                Issue.record("lookup did not finish"); continue
            }
            if found == sim.trueClosest(to: DHT.Key(hashing: key), count: 20, excluding: origin) { exact += 1 }
            hops.append(stats.hops)
        }
        var histogram = [Int: Int]()
        for h in hops { histogram[h, default: 0] += 1 }
        let bound = Self.log2(10_000) / Self.log2(3)  // log_alpha(N) ≈ 8.4
        print("DHT 10k lookups: exact \(exact)/\(lookups), hops histogram \(histogram.sorted { $0.key < $1.key }), median \(Self.median(hops)), bound \(bound), messages \(sim.messagesDelivered)")
        #expect(exact == lookups)
        #expect(Self.median(hops) <= bound)
    }

    @Test func get_succeedsForAtLeast99Percent_afterAFifthOfTheNodesVanishWithoutNotice() {
        let n = 10_000
        var sim = KadSim(seed: 2001)
        for _ in 0..<n { sim.addNode() }
        sim.prefillRoutingTables()
        var rng = SeededRandom(seed: 2002)
        var records: [(key: [UInt8], value: [UInt8], publisher: Int)] = []
        for i in 0..<200 {
            let key = Self.randomKey(&rng)
            let value = Array("value-\(i)".utf8)
            let publisher = Int(rng.next() % UInt64(n))
            let q = sim.start(publisher) { $0.putValue(key, value: value, now: $1) }
            guard let (result, _) = sim.runUntilFinished(node: publisher, query: q), case .putValue(.success(let stored)) = result else {
                Issue.record("put failed"); continue
            }
            #expect(stored == 20)  // default replication k
            records.append((key, value, publisher))
        }
        // 20% of the nodes disappear without notice: their requests simply time out.
        var gone = 0
        while gone < n / 5 {
            let v = Int(rng.next() % UInt64(n))
            if sim.behavior[v] != .dead { sim.behavior[v] = .dead; gone += 1 }
        }
        var ok = 0
        for r in records {
            var origin = Int(rng.next() % UInt64(n))
            while sim.behavior[origin] == .dead || origin == r.publisher { origin = Int(rng.next() % UInt64(n)) }
            let q = sim.start(origin) { $0.getValue(r.key, now: $1) }
            if let (result, _) = sim.runUntilFinished(node: origin, query: q), case .getValue(.success(let found)) = result,
               found.record.value == r.value {
                ok += 1
            }
        }
        print("DHT churn: GET succeeded \(ok)/\(records.count) with 20% of \(n) nodes gone")
        #expect(records.count == 200)
        #expect(Double(ok) >= 0.99 * Double(records.count))
    }

    @Test func lookups_recover_afterAPartitionHeals() {
        // 300 nodes join through 4 bootstrap nodes with the real protocol (bytes on the wire).
        let n = 300
        var sim = KadSim(seed: 3001, useBytes: true)
        var boot = DHT.Settings()
        boot.refreshMaxBucket = 3  // keeps the simulation cheap; the self lookup does the rest
        for _ in 0..<4 { sim.addNode(settings: boot) }
        var s = boot
        s.bootstrapPeers = (0..<4).map { DHT.PeerInfo(id: sim.peers[$0]) }
        for _ in 4..<n { sim.addNode(settings: s) }
        for i in 0..<4 { sim.nodes[i].settings.bootstrapPeers = s.bootstrapPeers }
        for i in 0..<n {
            sim.now = Instant(nanoseconds: Int64(i) * 50_000_000)  // staggered joins
            sim.apply(sim.nodes[i].onStart(now: sim.now), node: i)
            sim.run(until: sim.now)
        }
        sim.run(until: sim.now + .seconds(120))
        func exactLookups(_ count: Int, _ rng: inout SeededRandom, among: (Int) -> Bool) -> Int {
            var exact = 0
            for _ in 0..<count {
                var origin = Int(rng.next() % UInt64(n))
                while !among(origin) { origin = Int(rng.next() % UInt64(n)) }
                let key = Self.randomKey(&rng)
                let q = sim.start(origin) { $0.findNode(key, now: $1) }
                if let (r, _) = sim.runUntilFinished(node: origin, query: q), case .closestPeers(let found) = r,
                   found == sim.trueClosest(to: DHT.Key(hashing: key), count: 20, excluding: origin,
                                            among: { sim.group[$0] == sim.group[origin] }) {
                    exact += 1
                }
            }
            return exact
        }
        var rng = SeededRandom(seed: 3002)
        let before = exactLookups(50, &rng, among: { _ in true })
        // Partition: odd nodes (including bootstrap nodes 1 and 3) split off for 40 minutes.
        for i in 0..<n where i % 2 == 1 { sim.group[i] = 1 }
        sim.run(until: sim.now + .seconds(2400))
        let during = exactLookups(50, &rng, among: { _ in true })  // exact within its own side
        let crossSide = sim.nodes[0].routingTable.allEntries.filter { sim.group[sim.index[$0.peer]!] == 1 }.count
        // Heal, then let two refresh rounds run.
        for i in 0..<n { sim.group[i] = 0 }
        sim.run(until: sim.now + .seconds(1300))
        let after = exactLookups(50, &rng, among: { _ in true })
        print("DHT partition: exact lookups before \(before)/50, during (own side) \(during)/50, after heal \(after)/50; node 0 kept \(crossSide) cross-side entries while partitioned; messages \(sim.messagesDelivered)")
        #expect(before >= 48)
        #expect(during >= 45)
        #expect(after >= 48)
    }

    @Test func disjointPaths_boundTheShareOfResultsASybilAttackerCaptures() {
        // 2,000 nodes of which 30% are Sybils that answer every query only with fellow Sybils
        // (the ones closest to the target), and answer first (1 ms links): an eclipse attempt. A
        // plain lookup that meets a Sybil sees its k closest known peers answer quickly and stops
        // before the honest answers arrive.
        let n = 2000, sybilFraction = 0.3
        func run(paths: Int) -> (honestClosestFound: Double, sybilShare: Double) {
            var sim = KadSim(seed: 4001)
            var s = DHT.Settings()
            s.disjointPaths = paths
            var rng = SeededRandom(seed: 4002)
            for _ in 0..<n { sim.addNode(settings: s, behavior: rng.nextDouble() < sybilFraction ? .sybil : .honest) }
            sim.prefillRoutingTables()
            var found = 0.0, share = 0.0
            let lookups = 100
            for _ in 0..<lookups {
                var origin = Int(rng.next() % UInt64(n))
                while sim.behavior[origin] != .honest { origin = Int(rng.next() % UInt64(n)) }
                let key = Self.randomKey(&rng)
                let q = sim.start(origin) { $0.findNode(key, now: $1) }
                guard let (r, _) = sim.runUntilFinished(node: origin, query: q), case .closestPeers(let result) = r else { continue }
                // The honest members of the true 20 closest (Sybils are real nodes, some are legitimately close).
                let honestTruth = Set(sim.trueClosest(to: DHT.Key(hashing: key), count: 20, excluding: origin)
                    .filter { sim.behavior[sim.index[$0]!] == .honest })
                found += Double(result.filter { honestTruth.contains($0) }.count) / Double(max(1, honestTruth.count))
                share += Double(result.filter { sim.behavior[sim.index[$0]!] == .sybil }.count) / Double(max(1, result.count))
            }
            return (found / Double(lookups), share / Double(lookups))
        }
        let plain = run(paths: 1)
        let disjoint = run(paths: 4)
        // Bound (S/Kademlia §4.4 argument): an honest node among the true closest is missed only if
        // every path that could reach it is captured. We require ≥ 90% of the honest true 20 closest
        // to be found with d = 4, and the Sybil share of results to stay within 10 points of the
        // Sybils' fair share of the keyspace (30%).
        print("DHT Sybil 30%: plain found \(plain.honestClosestFound) share \(plain.sybilShare); disjoint(4) found \(disjoint.honestClosestFound) share \(disjoint.sybilShare)")
        #expect(disjoint.honestClosestFound >= 0.9)
        #expect(disjoint.sybilShare <= sybilFraction + 0.1)
        #expect(disjoint.honestClosestFound >= plain.honestClosestFound)
        // And the attack is real: without disjoint paths it captures more than its share.
        #expect(plain.sybilShare > sybilFraction + 0.05)
    }
}
