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
        let nodes = out, first = out[0].listenAddrs[0], third = out[2].listenAddrs[0]
        for d in nodes.dropFirst() { let _: PeerId = try await d.onLoop { s, done in s.dial(first) { done($0) } } }
        let _: PeerId = try await nodes[1].onLoop { s, done in s.dial(third) { done($0) } }
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

    /// Node 0 starts a run of the mean (α = 1, β = 0, no reputation: exact results) for all of
    /// `ds`; the others join once its config has reached them. Returns the run id.
    func startRun(_ ds: [Daemon], name: String) async throws -> String {
        let t0 = try await train(ds[0])
        let n = ds.count
        let config = RunConfig(aggregator: "mean", alpha: 1, beta: 0, k: n, rounds: 5, nodes: n, reputation: false)
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
