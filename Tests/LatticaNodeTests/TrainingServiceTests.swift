import Foundation
import LatticaAPI
import LatticaCore
import LatticaCRDT
import LatticaLearning
import Testing
@testable import LatticaNode

/// The averaging protocol between in-process daemons, driven through the service (no trainer
/// process): a run's config replicates, members pull each other's θ, and a lying peer's
/// contribution is refused before it touches the model.
@Suite(.serialized) struct TrainingServiceTests {
    func daemons(_ n: Int, _ tmp: TempDir) async throws -> [Daemon] {
        var out: [Daemon] = []
        for i in 0..<n {
            var c = NodeConfig(dataDir: tmp.path + "/n\(i)")
            c.metricsAddr = nil
            if let first = out.first { c.bootstrap = [first.listenAddrs[0].description] }
            out.append(try await Daemon.start(config: c))
        }
        let nodes = out, first = out[0].listenAddrs[0]
        for d in nodes.dropFirst() { let _: PeerId = try await d.onLoop { s, done in s.dial(first) { done($0) } } }
        if n > 2 { let third = out[2].listenAddrs[0]; let _: PeerId = try await nodes[1].onLoop { s, done in s.dial(third) { done($0) } } }
        return nodes
    }

    func train(_ d: Daemon) async throws -> TrainingService {
        try await d.loop.submit { _ in d.service(TrainingService.self)! }
    }

    /// Joins once the run's config has replicated (polled on the store: replication is asynchronous).
    func join(_ d: Daemon, _ run: String, shard: String) async throws {
        let t = try await train(d)
        for _ in 0..<500 {
            let ok: Bool = try await d.loop.submit { _ in (try? t.join(run, shard: shard, spawn: false)) != nil }
            if ok { return }
            try await d.loop.sleep(for: .milliseconds(10))
        }
        Issue.record("the run's config never reached \(d.peerId)")
    }

    func step(_ d: Daemon, _ step: Int, _ theta: [Float]) async throws -> ([Float], OuterStepResult) {
        let t = try await train(d)
        return try await d.loop.submitCallback { _, done in
            t.outerStep(step: step, theta: theta) { r in done(r.mapError { $0 as any Error }) }
        }
    }

    func merge(_ d: Daemon, _ theta: [Float]) async throws -> ([Float], OuterStepResult) {
        let t = try await train(d)
        return try await d.loop.submitCallback { _, done in
            t.finalMerge(theta: theta) { r in done(r.mapError { $0 as any Error }) }
        }
    }

    func close(_ a: [Float], _ b: [Float]) -> Bool { a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) < 1e-5 } }

    /// Node 0 starts a run of the mean (α = 1, β = 0, no reputation: exact results) for all of
    /// `ds`; the others join once its config has reached them. Returns the run id.
    func startRun(_ ds: [Daemon], name: String, method: String = "robust", k: Int? = nil) async throws -> String {
        let t0 = try await train(ds[0])
        let n = ds.count
        let config = RunConfig(aggregator: "mean", alpha: 1, beta: 0, k: k ?? n, rounds: 5, nodes: n, reputation: false, method: method,
                               normBound: 0)
        let r = try await ds[0].loop.submit { _ in try t0.start(.init(name: name, config: config, shard: "0/\(n)", spawn: false)) }
        for (i, d) in ds.enumerated().dropFirst() { try await join(d, r.run, shard: "\(i)/\(n)") }
        return r.run
    }

    @Test func threeDaemons_pullEachOther_andAggregate() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let ds = try await daemons(3, tmp)
        defer { Task { for d in ds { await d.stop() } } }
        let run = try await startRun(ds, name: "t")
        let phi0 = [Float](repeating: 0, count: 6)
        for d in ds { let t = try await train(d); try await d.loop.submit { _ in try t.setStart(step: 0, phi: phi0) } }
        // Three nodes, three different θ; with the mean, α = 1, β = 0 every node ends at their mean.
        let thetas: [[Float]] = [[3, 0, 0, 0, 0, 0], [0, 3, 0, 0, 0, 0], [0, 0, 3, 0, 0, 0]]
        async let a = step(ds[0], 0, thetas[0])
        async let b = step(ds[1], 0, thetas[1])
        async let c = step(ds[2], 0, thetas[2])
        let results = try await [a, b, c]
        for (phi, res) in results {
            #expect(res.partners.count == 2, "\(res)")
            #expect(zip(phi, [1, 1, 1, 0, 0, 0] as [Float]).allSatisfy { abs($0 - $1) < 1e-5 }, "\(phi)")
            #expect(res.bytesIn > 0)
        }
    }

    @Test func aPeerAnsweringWithTheWrongShape_isRefused_andCounted() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let ds = try await daemons(3, tmp)
        defer { Task { for d in ds { await d.stop() } } }
        let run = try await startRun(ds, name: "s")
        // ds[2] runs a model with another shape: its replies cannot be taken.
        for (i, d) in ds.enumerated() {
            let t = try await train(d)
            try await d.loop.submit { _ in try t.setStart(step: 0, phi: [Float](repeating: 0, count: i == 2 ? 5 : 4)) }
        }
        async let a = step(ds[0], 0, [1, 1, 1, 1])
        async let b = step(ds[1], 0, [2, 2, 2, 2])
        async let c = step(ds[2], 0, [9, 9, 9, 9, 9])
        let (ra, rb, _) = try await (a, b, c)
        #expect(ra.1.partners == [ds[1].peerId.description], "\(ra.1)")
        #expect(ra.1.rejected >= 1 && rb.1.rejected >= 1)
        #expect(ra.0.allSatisfy { $0.isFinite && abs($0 - 1.5) < 1e-5 }, "\(ra.0)")
        // The refusal is evidence in the run's reports (an accusation, not a verdict).
        let reported = try await ds[0].loop.submit { _ -> Bool in
            guard case .map(let m)? = ds[0].service(CRDTService.self)!.crdt.state.object(at: "run/\(run)/reports/\(ds[0].peerId)") else { return false }
            return m[ds[2].peerId.description].flatMap(CRDT.Report.init(value:))?.reason == "malformed_reply"
        }
        #expect(reported)
    }
}

extension TrainingServiceTests {
    /// DiLoCo over the network pulls every connected member (not k − 1: k is 2 here) and takes
    /// the mean.
    @Test func diloco_pullsEveryMember_andTakesTheMean() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let ds = try await daemons(3, tmp)
        defer { Task { for d in ds { await d.stop() } } }
        _ = try await startRun(ds, name: "d", method: "diloco", k: 2)
        for d in ds { let t = try await train(d); try await d.loop.submit { _ in try t.setStart(step: 0, phi: [0, 0, 0]) } }
        async let a = step(ds[0], 0, [3, 0, 0])
        async let b = step(ds[1], 0, [0, 3, 0])
        async let c = step(ds[2], 0, [0, 0, 3])
        for (phi, res) in try await [a, b, c] {
            #expect(res.partners.count == 2, "\(res)")
            #expect(close(phi, [1, 1, 1]), "\(phi)")
        }
    }

    /// NoLoCo pairs: every node pulls the one partner the seeded permutation of the members' peer
    /// ids gives it, the same pairing on every node, and ends at the mean of its pair.
    @Test func nolocoPairs_agreeOnThePairing_andAverageInPairs() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let ds = try await daemons(4, tmp)
        defer { Task { for d in ds { await d.stop() } } }
        // All four connected to each other, so that every node sees the same members.
        for i in 1..<4 { for j in (i + 1)..<4 { let a = ds[j].listenAddrs[0]; let _: PeerId = try await ds[i].onLoop { s, done in s.dial(a) { done($0) } } } }
        _ = try await startRun(ds, name: "p", method: "noloco")
        for _ in 0..<500 {
            let seen = try await ds[0].loop.submit { _ -> Int in
                guard case .set(let m)? = ds[0].service(CRDTService.self)!.crdt.state.object(at: "run/\(ds[0].peerId).p/members") else { return 0 }
                return m.elements.count
            }
            if seen == 4 { break }
            try await ds[0].loop.sleep(for: .milliseconds(10))
        }
        for d in ds { let t = try await train(d); try await d.loop.submit { _ in try t.setStart(step: 0, phi: [0, 0, 0, 0]) } }
        let thetas: [[Float]] = (0..<4).map { i in (0..<4).map { $0 == i ? 4 : 0 } }
        async let r0 = step(ds[0], 0, thetas[0])
        async let r1 = step(ds[1], 0, thetas[1])
        async let r2 = step(ds[2], 0, thetas[2])
        async let r3 = step(ds[3], 0, thetas[3])
        let results = try await [r0, r1, r2, r3]
        let ids = ds.map(\.peerId)
        for (i, (phi, res)) in results.enumerated() {
            let expected = TrainingService.nolocoPartner(me: ids[i], members: ids.filter { $0 != ids[i] }, step: 0, seed: 1)!
            #expect(res.partners == [expected.description], "node \(i): \(res.partners)")
            let j = ids.firstIndex(of: expected)!
            #expect(results[j].1.partners == [ids[i].description], "the pairing is symmetric")
            #expect(close(phi, zip(thetas[i], thetas[j]).map { ($0 + $1) / 2 }), "\(phi)")
        }
    }

    /// The final merge takes every member's final model once, waiting for a member still in its
    /// last step (it publishes 300 ms later), and merges with the run's rule (the mean here).
    @Test func finalMerge_waitsForLateMembers_andMergesEveryModel() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let ds = try await daemons(3, tmp)
        defer { Task { for d in ds { await d.stop() } } }
        _ = try await startRun(ds, name: "m")
        for d in ds { let t = try await train(d); try await d.loop.submit { _ in try t.setStart(step: 0, phi: [0, 0, 0]) } }
        // The merge starts from each node's φ (zero here) and its final θ: every node publishes
        // its θ as the final model; the merged model is the mean of the three finals relative to φ.
        async let a = merge(ds[0], [3, 0, 0])
        async let b = merge(ds[1], [0, 3, 0])
        async let c: ([Float], OuterStepResult) = { try await ds[2].loop.sleep(for: .milliseconds(300)); return try await merge(ds[2], [0, 0, 3]) }()
        let results = try await [a, b, c]
        for (phi, res) in results {
            #expect(res.partners.count == 2, "\(res)")
            #expect(close(phi, [1, 1, 1]), "\(phi)")
        }
        let merged = try await ds[0].loop.submit { _ in ds[0].service(TrainingService.self)!.status().runs.first?.merged }
        #expect(merged == true)
    }
}

@Suite struct DynamicBLASTests {
    /// The daemon's dlopen'ed OpenBLAS agrees with the portable loops it replaces.
    @Test func dynamicOpenBLAS_agreesWithThePortableLoops() throws {
        let dyn = try #require(DynamicOpenBLAS())
        var rng = SeededRandom(seed: 77)
        let n = 5, k = 1000
        let a = (0..<(n * k)).map { _ in Float(rng.nextGaussian()) }
        var c1 = [Float](repeating: 0, count: n * n), c2 = c1
        dyn.ssyrk(n: n, k: k, a: a, c: &c1)
        PortableBLAS().ssyrk(n: n, k: k, a: a, c: &c2)
        for i in 0..<n { for j in i..<n { #expect(abs(c1[i * n + j] - c2[i * n + j]) <= 1e-2 * max(1, abs(c2[i * n + j]))) } }
        var y1 = Array(a.prefix(k)), y2 = y1
        dyn.saxpy(n: k, alpha: 0.5, x: Array(a.suffix(k)), y: &y1)
        PortableBLAS().saxpy(n: k, alpha: 0.5, x: Array(a.suffix(k)), y: &y2)
        #expect(zip(y1, y2).allSatisfy { abs($0 - $1) < 1e-5 })
    }
}
