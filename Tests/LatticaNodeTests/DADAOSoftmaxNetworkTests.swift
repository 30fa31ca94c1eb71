import Foundation
import LatticaAPI
import LatticaCore
import LatticaData
import LatticaLearning
import Testing
@testable import LatticaNode

/// Softmax DADAO between in-process daemons: a short run end to end, its final merge, and a node
/// whose daemon stops abruptly and resumes from its data dir at the saved run clock.
extension TrainingServiceTests {
    static let softmaxModel = "softmax:0.05"
    static let softmaxProblem = Result { () throws -> DADAO.SoftmaxProblem in
        DADAO.SoftmaxProblem(data: try DataFiles.fixture("digits").scaled(by: 1.0 / 16), nodes: 3, split: .dirichlet(alpha: 0.5), seed: 1, l2: 0.05)
    }
    static let softmaxMinimiser = Result { try softmaxProblem.get().minimiser() }

    func startSoftmaxRun(_ ds: [Daemon], name: String, horizon: Int, unitMs: Int, finalMerge: Bool = true) async throws -> String {
        let t0 = try await train(ds[0])
        let n = ds.count
        let config = RunConfig(dataset: "digits", model: Self.softmaxModel, rounds: horizon, seed: 1, split: "dirichlet:0.5", nodes: n,
                               method: "dadao", finalMerge: finalMerge, timeUnitMs: unitMs)
        let r = try await ds[0].loop.submit { _ in try t0.start(.init(name: name, config: config, shard: "0/\(n)", spawn: false)) }
        for (i, d) in ds.enumerated().dropFirst() { try await join(d, r.run, shard: "\(i)/\(n)") }
        return r.run
    }

    /// `trainer.dadao_start` as the handler does it: the saved state (if any) resumed, else x0.
    func startDADAO(_ d: Daemon, _ run: String, _ p: some DADAO.Problem, nextMs: Double) async throws -> ([Double], DADAOStepResult) {
        let t = try await train(d)
        var rng = SeededRandom(seed: 1)
        let x0 = p.initialPoint(rng: &rng)
        let saved = t.loadDADAOState(run: run, dimension: p.dimension, L: p.L, mu: p.mu)
        return try await d.loop.submitCallback { _, done in
            t.startDADAO(run: run, x0: x0, L: p.L, mu: p.mu, nextMs: nextMs, gatherUntil: nil, resume: saved) { done($0.mapError { $0 as any Error }) }
        }
    }

    /// One node's trainer, as lattica-train does it: from `dadao_start` (the run clock it answers)
    /// a Poisson gradient clock until `until` time units (or the horizon).
    func softmaxTrainer(_ d: Daemon, index i: Int, run: String, _ p: some DADAO.Problem, unit: Double, horizon: Double, until: Double? = nil) async throws -> (start: DADAOStepResult, end: DADAOStepResult) {
        var clock = SeededRandom(seed: 200 + UInt64(i))
        func draw() -> Double { -Foundation.log(max(clock.nextDouble(), 1e-300)) }
        var wait = draw()
        var (x, r) = try await startDADAO(d, run, p, nextMs: wait * unit * 1000)
        let first = r
        let start = ContinuousClock.now - .nanoseconds(Int64(r.time * unit * 1e9))
        func elapsed() -> Double { let c = (ContinuousClock.now - start).components; return (Double(c.seconds) + Double(c.attoseconds) / 1e18) / unit }
        let t = try await train(d)
        let end = min(horizon, until ?? horizon)
        var due = r.time + wait
        while true {
            let g = p.gradient(node: i, at: x)
            let ahead = (due - elapsed()) * unit
            if ahead > 0 { try await Task.sleep(for: .microseconds(Int64(ahead * 1e6))) }
            if elapsed() >= end { return (first, r) }
            wait = draw()
            due += wait
            let next = max(0, due - elapsed()) * unit * 1000
            (x, r) = try await d.loop.submit { _ in try t.dadaoGradient(g, nextMs: next) }
        }
    }

    func dadaoModel(_ d: Daemon) async throws -> [Double] {
        let t = try await train(d)
        return try await d.loop.submit { l in t.run.flatMap { r in r.dadao.map { $0.instance.predictedX(at: $0.clock(l.now)) } } ?? [] }
    }

    /// Three daemons, softmax on digits in Dirichlet(0.5) shards, 150 time units: the nodes go
    /// towards the exact minimiser together and reach its accuracy; then the final merge of every
    /// member's X (the merge of every method) brings them closer still.
    @Test func dadao_softmax_threeDaemons_converge_andMergeAtTheEnd() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let ds = try await daemons(3, tmp)
        defer { Task { for d in ds { await d.stop() } } }
        let horizon = 150, unit = 0.04
        let run = try await startSoftmaxRun(ds, name: "sm", horizon: horizon, unitMs: 40)
        let p = try Self.softmaxProblem.get(), xStar = try Self.softmaxMinimiser.get()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, d) in ds.enumerated() {
                group.addTask { _ = try await self.softmaxTrainer(d, index: i, run: run, p, unit: unit, horizon: Double(horizon)) }
            }
            try await group.waitForAll()
        }
        var rng = SeededRandom(seed: 1)
        let err0 = DADAO.RidgeProblem.squaredDistance(p.initialPoint(rng: &rng), xStar)
        let xs = try await { var out: [[Double]] = []; for d in ds { out.append(try await dadaoModel(d)) }; return out }()
        let errs = xs.map { DADAO.RidgeProblem.squaredDistance($0, xStar) }
        let acc = xs.map { p.accuracy(at: $0) }
        let consensus = Experiment.consensusDistance(xs)
        print("DADAO softmax, 3 daemons, t = \(horizon): err \(errs) (from \(err0)), accuracy \(acc), minimiser \(p.accuracy(at: xStar)), consensus \(consensus)")
        for e in errs { #expect(e < err0 / 20, "\(errs) from \(err0)") }
        for a in acc { #expect(a > p.accuracy(at: xStar) - 0.05, "\(acc)") }

        // The final merge, on the three at once.
        let merged = try await withThrowingTaskGroup(of: (Int, [Float], OuterStepResult).self) { group in
            for (i, d) in ds.enumerated() {
                let theta = xs[i].map(Float.init)
                group.addTask {
                    let t = try await self.train(d)
                    let (m, r) = try await d.loop.submitCallback { _, done in t.finalMergeAnyMethod(theta: theta) { done($0.mapError { $0 as any Error }) } }
                    return (i, m, r)
                }
            }
            var out = [([Float], OuterStepResult)?](repeating: nil, count: 3)
            for try await (i, m, r) in group { out[i] = (m, r) }
            return out.compactMap { $0 }
        }
        let after = merged.map { $0.0.map(Double.init) }
        print("after the merge: consensus \(Experiment.consensusDistance(after)) (before \(consensus)), accuracy \(after.map { p.accuracy(at: $0) }), partners \(merged.map { $0.1.partners.count })")
        #expect(merged.allSatisfy { $0.1.partners.count == 2 })
        #expect(Experiment.consensusDistance(after) < consensus / 4)
        #expect(zip(after, xs).contains { DADAO.RidgeProblem.squaredDistance($0, $1) > 0 }, "the merge changed nothing")
        for a in after { #expect(DADAO.RidgeProblem.squaredDistance(a, xStar) < err0 / 20) }
    }

    /// A node's daemon stops abruptly mid-run (no last save: what `kill -9` leaves) and starts
    /// again from its data dir: it resumes the saved state at the run clock (not at 0), and with
    /// gossip it ends the run close to the others.
    @Test func dadao_restartedDaemon_resumesAtTheSavedClock_notAtZero() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let ds = try await daemons(3, tmp)
        defer { Task { for d in ds { await d.stop() } } }
        let horizon = 240.0, unit = 0.04, killAt = 80.0
        let run = try await startSoftmaxRun(ds, name: "rs", horizon: Int(horizon), unitMs: 40)
        let p = try Self.softmaxProblem.get(), xStar = try Self.softmaxMinimiser.get()
        let dir = tmp.path + "/n2"
        async let a = softmaxTrainer(ds[0], index: 0, run: run, p, unit: unit, horizon: horizon)
        async let b = softmaxTrainer(ds[1], index: 1, run: run, p, unit: unit, horizon: horizon)
        let before = try await softmaxTrainer(ds[2], index: 2, run: run, p, unit: unit, horizon: horizon, until: killAt).end
        await ds[2].stop()
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/runs/\(run)/dadao.state")))
        let saved = try DADAO.StateFile.decode(bytes, expectedDimension: p.dimension)
        // Saved every 0.25 units (10 ms here); the bound allows 400 ms of a loaded loop (the full
        // suite at load 4 saw 77.8 for a stop at 80), and is far from 0 or a save only at start.
        #expect(saved.time > killAt - 10 && saved.time <= killAt + 3, "saved at t = \(saved.time)")
        #expect(saved.gradients > 40 && saved.gradients <= before.gradients)
        // Down for a while, then up again from the same data dir (it rejoins the run by itself).
        try await Task.sleep(for: .milliseconds(400))
        var c = NodeConfig(dataDir: dir)
        c.metricsAddr = nil
        c.sections["train"] = ["spawn_trainer": .bool(false)]
        c.bootstrap = [ds[0].listenAddrs[0].description]
        let restarted = try await Daemon.start(config: c)
        defer { Task { await restarted.stop() } }
        for other in [ds[0], ds[1]] {
            let addr = other.listenAddrs[0]
            let _: PeerId = try await restarted.onLoop { s, done in s.dial(addr) { done($0) } }
        }
        let t2 = try await train(restarted)
        #expect(try await restarted.loop.submit { _ in t2.run?.id } == run, "the run was not rejoined")
        // The trainer of the restarted node: its dadao_start resumes, and it runs to the horizon from there.
        let (resumed, after) = try await softmaxTrainer(restarted, index: 2, run: run, p, unit: unit, horizon: horizon)
        print("resumed: saved t = \(saved.time), run clock \(resumed.time), resumed_from \(String(describing: resumed.resumedFrom))")
        #expect(resumed.resumedFrom == saved.time)
        #expect(resumed.time > saved.time + 5, "the run clock did not go on over the downtime: \(resumed.time)")
        #expect(resumed.gradients == saved.gradients)
        _ = try await (a, b)
        #expect(after.gradients > saved.gradients)
        let xs = [try await dadaoModel(ds[0]), try await dadaoModel(ds[1]), try await dadaoModel(restarted)]
        let errs = xs.map { DADAO.RidgeProblem.squaredDistance($0, xStar) }
        var rng = SeededRandom(seed: 1)
        let err0 = DADAO.RidgeProblem.squaredDistance(p.initialPoint(rng: &rng), xStar)
        print("after the resume, t = \(horizon): err \(errs) (from \(err0)), accuracy \(xs.map { p.accuracy(at: $0) })")
        #expect(errs[2] < err0 / 20, "\(errs)")
        #expect(errs[2] < 10 * max(errs[0], errs[1]), "\(errs)")
    }

    /// A state file that is truncated, corrupt or of another dimension: a clear error, counted,
    /// set aside; the node starts fresh (nil), never a crash.
    @Test func dadao_badStateFiles_areCounted_setAside_andStartFresh() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        var c = NodeConfig(dataDir: tmp.path + "/n0")
        c.metricsAddr = nil
        let d = try await Daemon.start(config: c)
        defer { Task { await d.stop() } }
        let t = try await train(d)
        let run = "12D3KooWtest.bad"
        let path = t.runDir(run) + "/dadao.state"
        try FileManager.default.createDirectory(atPath: t.runDir(run), withIntermediateDirectories: true)
        let good = DADAO.StateFile.encode(DADAO.Snapshot(L: 2, mu: 0.1, time: 5, wallStartNanoseconds: 1, state: [[Double]](repeating: [1, 2, 3], count: 6)))
        for (bytes, reason, dim, L) in [(Array(good.prefix(100)), "truncated", 3, 2.0), (good, "dimension", 4, 2.0), (good, "config", 3, 3.0),
                                        (Array(repeating: 0x41, count: 200), "format", 3, 2.0)] {
            FileManager.default.createFile(atPath: path, contents: Data(bytes))
            let before = metric("lattica_train_dadao_state_errors_total{reason=\"\(reason)\"}")
            #expect(t.loadDADAOState(run: run, dimension: dim, L: L, mu: 0.1) == nil)
            #expect(metric("lattica_train_dadao_state_errors_total{reason=\"\(reason)\"}") == before + 1, "\(reason)")
            #expect(FileManager.default.fileExists(atPath: path + ".bad") && !FileManager.default.fileExists(atPath: path))
        }
        FileManager.default.createFile(atPath: path, contents: Data(good))
        #expect(t.loadDADAOState(run: run, dimension: 3, L: 2, mu: 0.1)?.time == 5)
    }
}
