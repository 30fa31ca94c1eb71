import ArgumentParser
import Foundation
import LatticaAPI
import LatticaCore
import LatticaData
import LatticaLearning

/// A `dadao` run (Docs/TRAINER-API.md, "DADAO runs"): this process owns the data and the node's
/// gradient clock (Poisson, rate 1 per time unit, seeded by the run's seed and the shard) and
/// computes every gradient; the daemon keeps the DADAO state, runs the gossip clock and the
/// exchanges. At each event the trainer hands ∇f_i(X) over and gets X at its next event back,
/// computed by the daemon from the ODE (exact: gossip never touches X between gradient events).
extension Trainer {
    func runDADAO(client: ControlClient, attach a: TrainerAttachResult, runID: String) throws {
        let c = a.config
        let shard = try Shard(a.shard)
        guard let kappa = c.ridgeConditionNumber else { throw ValidationError("a dadao run takes the model ridge or ridge:KAPPA, not \(c.model)") }
        let problem = DADAO.RidgeProblem(data: try load(c.dataset), nodes: shard.count, conditionNumber: kappa)
        let seed = UInt64(c.seed)
        var rng = SeededRandom(seed: seed)
        let x0 = problem.initialPoint(rng: &rng)
        var clock = SeededRandom(seed: seed &* 0xD1B5_4A32_D192_ED03 ^ UInt64(shard.index + 1) &* 0x94D0_49BB_1331_11EB)
        let unit = Double(c.timeUnitMs) / 1000, horizon = Double(c.rounds), d = problem.dimension
        log("attached to \(a.run): DADAO, ridge (κ \(kappa), L \(problem.L), μ \(problem.mu)) on \(c.dataset), d = \(d), shard \(shard), \(c.timeUnitMs) ms per time unit, horizon \(c.rounds)")

        // The shared-memory file: d float64 (tmpfs, private to this user).
        let shm = "/dev/shm/lattica-train-\(getpid())"
        unlink(shm)
        let fd = open(shm, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
        guard fd >= 0, ftruncate(fd, off_t(8 * d)) == 0 else { throw ValidationError("cannot create \(shm)") }
        defer { close(fd); unlink(shm) }
        func put(_ v: [Double]) throws { guard v.withUnsafeBytes({ pwrite(fd, $0.baseAddress, $0.count, 0) == $0.count }) else { throw ValidationError("cannot write \(shm)") } }
        func get() throws -> [Double] {
            var v = [Double](repeating: 0, count: d)
            guard v.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, $0.count, 0) == $0.count }) else { throw ValidationError("cannot read \(shm)") }
            return v
        }
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
        func draw() -> Double { -Foundation.log(max(clock.nextDouble(), 1e-300)) * unit }

        var wait = draw()
        try put(x0)
        var r = try client.call(Methods.TrainerDADAOStart.self, .init(run: runID, shm: shm, count: d, l: problem.L, mu: problem.mu, nextMs: wait * 1000))
        let start = ContinuousClock.now
        var x = try get()
        var eventAt = start + .nanoseconds(Int64(wait * 1e9))
        let every = max(1.0, horizon / 30)
        var nextSample = 0.0
        func sample(_ t: Double, _ x: [Double], _ r: DADAOStepResult) -> Double {
            let loss = problem.loss(at: x)
            let xs = x.map { String(format: "%.9g", $0) }.joined(separator: ",")
            FileHandle.standardOutput.write(Data("{\"dadao\": {\"t\": \(String(format: "%.3f", t)), \"wall\": \(String(format: "%.3f", Date().timeIntervalSince1970)), \"shard\": \(shard.index), \"err\": \(problem.error(x)), \"loss\": \(loss), \"gradients\": \(r.gradients), \"gossips\": \(r.gossips), \"failures\": \(r.failures), \"rejected\": \(r.rejected), \"exchange_ms\": \(r.exchangeMs ?? 0), \"x\": [\(xs)]}}\n".utf8))
            return loss
        }
        _ = sample(0, x, r)
        nextSample = every
        while true {
            // The gradient for the next event, computed before it fires (this process, never the loop).
            let g = problem.gradient(node: shard.index, at: x)
            let now = ContinuousClock.now
            if eventAt > now { Thread.sleep(forTimeInterval: seconds(eventAt - now)) }
            let t = seconds(ContinuousClock.now - start) / unit
            if t >= horizon { break }
            wait = draw()
            // The schedule is absolute (rate 1 per unit on average even when a call or a sleep runs
            // late: the next event then fires sooner); a trainer more than 10 units behind (a
            // stalled machine) starts over from now instead of firing a burst.
            let behind = seconds(ContinuousClock.now - eventAt) / unit
            eventAt = (behind > 10 ? ContinuousClock.now : eventAt) + .nanoseconds(Int64(wait * 1e9))
            let sampling = t >= nextSample
            let loss = sampling ? problem.loss(at: x) : nil
            try put(g)
            let nextMs = max(0, seconds(eventAt - ContinuousClock.now) * 1000)
            r = try client.call(Methods.TrainerDADAOGradient.self, .init(run: runID, shm: shm, count: d, nextMs: nextMs, loss: loss))
            x = try get()
            if sampling {
                _ = sample(t, x, r)
                while nextSample <= t { nextSample += every }
            }
        }
        _ = sample(horizon, x, r)
        log("DADAO done at t = \(c.rounds): ‖x − x*‖² \(problem.error(x)), \(r.gradients) gradient events, \(r.gossips) exchanges, \(r.failures) failed, \(r.rejected) refused")
        _ = try client.call(Methods.TrainerDone.self, .init(run: runID, accuracy: nil))
    }

    /// `--simulate --method dadao`: the simulator's DADAO (`Experiment.runDADAO`, complete graph)
    /// on the same data, nodes, κ, seed and horizon, printing its curve as JSON.
    func runSimulatedDADAO() throws {
        var c = Experiment.DADAOConfig()
        c.nodes = nodes
        c.graph = .complete
        c.horizon = Double(rounds)
        c.sampleEvery = max(1.0, Double(rounds) / 30)
        c.gradientRate = gradientRate
        c.gossipFraction = gossipFraction
        c.conditionNumber = model.hasPrefix("ridge:") ? Double(model.dropFirst(6)) ?? 1709 : 1709
        let o = Experiment.runDADAO(c, data: try load(dataset), seed: UInt64(seed))
        let pts = zip(o.dadao, o.consensus).map { String(format: "[%.1f, %.6g, %.6g]", $0.0.0, $0.0.1, $0.1) }.joined(separator: ",")
        print("{\"simulated_dadao\": {\"chi1\": \(o.chi1), \"lambda_mix\": \(o.lambdaMix), \"kappa\": \(o.kappa), \"t_err_consensus\": [\(pts)]}}")
    }
}
