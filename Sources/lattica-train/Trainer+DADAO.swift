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
        let seed = UInt64(c.seed)
        guard let problem = DADAO.problem(model: c.model, data: try load(c.dataset), nodes: shard.count, split: try split(c.split), seed: seed) else {
            throw ValidationError("a dadao run takes the model ridge[:KAPPA] or softmax[:L2], not \(c.model)")
        }
        // ‖x − x*‖² for ridge, whose x* is exact and cheap; softmax reports its held-out accuracy.
        let xStar: [Double]? = (problem as? DADAO.RidgeProblem)?.xStar
        var rng = SeededRandom(seed: seed)
        let x0 = problem.initialPoint(rng: &rng)
        var clock = SeededRandom(seed: seed &* 0xD1B5_4A32_D192_ED03 ^ UInt64(shard.index + 1) &* 0x94D0_49BB_1331_11EB)
        let unit = Double(c.timeUnitMs) / 1000, horizon = Double(c.rounds), d = problem.dimension
        log("attached to \(a.run): DADAO, \(c.model) (L \(problem.L), μ \(problem.mu)) on \(c.dataset), d = \(d), shard \(shard), \(c.timeUnitMs) ms per time unit, horizon \(c.rounds)")

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
        // The run clock: 0 at a fresh start; after a restart the daemon resumed its saved state
        // (runs/<run>/dadao.state) and its clock, and this trainer's schedule continues from there.
        let start = ContinuousClock.now - .nanoseconds(Int64(max(0, r.time) * unit * 1e9))
        if r.resumedFrom != nil {
            clock = SeededRandom(seed: seed &* 0xD1B5_4A32_D192_ED03 ^ UInt64(shard.index + 1) &* 0x94D0_49BB_1331_11EB ^ r.time.bitPattern)
            log("resumed at DADAO time \(String(format: "%.3f", r.time)) (the daemon's state saved at \(String(format: "%.3f", r.resumedFrom ?? 0)))")
        }
        var x = try get()
        var eventAt = start + .nanoseconds(Int64(wait * 1e9))
        let every = max(1.0, horizon / 30)
        var nextSample = 0.0
        func sample(_ t: Double, _ x: [Double], _ r: DADAOStepResult, phase: String = "run") -> Double {
            let loss = problem.loss(at: x)
            // The vector itself only for ridge (30 values; the report computes consensus from it).
            let xs = xStar == nil ? "" : x.map { String(format: "%.9g", $0) }.joined(separator: ",")
            let err = xStar.map { "\(DADAO.RidgeProblem.squaredDistance(x, $0))" } ?? "null"
            FileHandle.standardOutput.write(Data("{\"dadao\": {\"phase\": \"\(phase)\", \"t\": \(String(format: "%.3f", t)), \"wall\": \(String(format: "%.3f", Date().timeIntervalSince1970)), \"shard\": \(shard.index), \"err\": \(err), \"loss\": \(loss), \"accuracy\": \(problem.accuracy(at: x)), \"gradients\": \(r.gradients), \"gossips\": \(r.gossips), \"failures\": \(r.failures), \"rejected\": \(r.rejected), \"exchange_ms\": \(r.exchangeMs ?? 0), \"x\": [\(xs)]}}\n".utf8))
            return loss
        }
        _ = sample(max(0, r.time), x, r)
        nextSample = max(0, r.time) + every
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
        let errText = xStar.map { "‖x − x*‖² \(DADAO.RidgeProblem.squaredDistance(x, $0))" } ?? "loss \(problem.loss(at: x))"
        log("DADAO done at t = \(c.rounds): \(errText), held-out accuracy \(String(format: "%.4f", problem.accuracy(at: x))), \(r.gradients) gradient events, \(r.gossips) exchanges, \(r.failures) failed, \(r.rejected) refused")
        // The final merge: every member's final X once, merged robustly by the daemon (the merge
        // of every method, float32 as their models travel); skipped after a merge already done
        // before a restart (`step` past `rounds`).
        var accuracy = problem.accuracy(at: x), before: Double?
        if c.finalMerge, a.step <= c.rounds {
            before = accuracy
            let lossBefore = problem.loss(at: x)
            let merged = try finalMerge(client: client, runID: runID, x.map(Float.init))
            x = merged.theta.map(Double.init)
            accuracy = problem.accuracy(at: x)
            _ = sample(horizon, x, r, phase: "merged")
            log("final merge of \(merged.result.partners.count + 1) models in \(Int(merged.result.ms)) ms: held-out accuracy \(String(format: "%.4f", before ?? 0)) -> \(String(format: "%.4f", accuracy)), loss \(lossBefore) -> \(problem.loss(at: x))")
        }
        _ = try client.call(Methods.TrainerDone.self, .init(run: runID, accuracy: accuracy, accuracyBeforeMerge: before))
    }

    /// `trainer.final_merge` with θ = the final X as float32, in a shared-memory file of its own.
    func finalMerge(client: ControlClient, runID: String, _ theta: [Float]) throws -> (theta: [Float], result: OuterStepResult) {
        let shm = "/dev/shm/lattica-train-\(getpid())-merge"
        unlink(shm)
        let fd = open(shm, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
        guard fd >= 0, ftruncate(fd, off_t(4 * theta.count)) == 0 else { throw ValidationError("cannot create \(shm)") }
        defer { close(fd); unlink(shm) }
        guard theta.withUnsafeBytes({ pwrite(fd, $0.baseAddress, $0.count, 0) == $0.count }) else { throw ValidationError("cannot write \(shm)") }
        let m = try client.call(Methods.TrainerFinalMerge.self, .init(run: runID, shm: shm, count: theta.count))
        var out = [Float](repeating: 0, count: theta.count)
        guard out.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, $0.count, 0) == $0.count }) else { throw ValidationError("cannot read \(shm)") }
        return (out, m)
    }

    func split(_ s: String) throws -> DataSplit {
        if s == "iid" { return .iid }
        guard s.hasPrefix("dirichlet:"), let a = Double(s.dropFirst(10)) else { throw ValidationError("unknown split \(s)") }
        return .dirichlet(alpha: a)
    }

    /// `--simulate --method dadao`: the simulator's DADAO (`Experiment.runDADAO`, complete graph)
    /// on the same data, nodes, model, split, seed and horizon, printing its curve as JSON; for
    /// softmax also the final merge (the run's rule, as the daemons do it), the accuracy of the
    /// exact minimiser of (1/n)·Σ f_i and of the centralised minimiser (every row weighs the same).
    func runSimulatedDADAO() throws {
        var c = Experiment.DADAOConfig()
        c.nodes = nodes
        c.graph = .complete
        c.horizon = Double(rounds)
        c.sampleEvery = max(1.0, Double(rounds) / 30)
        c.gradientRate = gradientRate
        c.gossipFraction = gossipFraction
        let s = UInt64(seed)
        guard let problem = DADAO.problem(model: model, data: try load(dataset), nodes: nodes, split: .dirichlet(alpha: dirichlet), seed: s) else {
            throw ValidationError("--method dadao takes --model ridge[:KAPPA] or softmax[:L2], not \(model)")
        }
        let xStar = problem.minimiser()
        let o = Experiment.runDADAO(c, problem: problem, xStar: xStar, seed: s)
        let pts = zip(zip(o.dadao, o.consensus), o.accuracy).map { String(format: "[%.1f, %.6g, %.6g, %.6g]", $0.0.0.0, $0.0.0.1, $0.0.1, $0.1) }.joined(separator: ",")
        var extra = ""
        if let softmax = problem as? DADAO.SoftmaxProblem {
            var settings = Averaging.Settings(method: .robust(k: k, rule: Aggregation.Rule(named: aggregator, k: k)))
            settings.mergeRule = Aggregation.Rule(named: aggregator, k: k)
            settings.useReputation = true
            settings.normBound = normBound > 0 ? normBound : nil
            let merged = Experiment.dadaoFinalMerge(o.final, settings: settings, seed: s)
            func mean(_ xs: [[Double]]) -> Double { xs.map { problem.accuracy(at: $0) }.reduce(0, +) / Double(xs.count) }
            let central = softmax.centralised().minimiser()
            extra = String(format: ", \"accuracy_before_merge\": %.6f, \"accuracy_after_merge\": %.6f, \"worst_before_merge\": %.6f, \"worst_after_merge\": %.6f, \"minimiser_accuracy\": %.6f, \"central_accuracy\": %.6f, \"loss_before_merge\": %.9g, \"loss_after_merge\": %.9g, \"minimiser_loss\": %.9g",
                           mean(o.final), mean(merged), o.final.map { problem.accuracy(at: $0) }.min() ?? 0, merged.map { problem.accuracy(at: $0) }.min() ?? 0,
                           problem.accuracy(at: xStar), softmax.accuracy(at: central),
                           o.final.map { problem.loss(at: $0) }.reduce(0, +) / Double(nodes), merged.map { problem.loss(at: $0) }.reduce(0, +) / Double(nodes), problem.loss(at: xStar))
        }
        print("{\"simulated_dadao\": {\"chi1\": \(o.chi1), \"lambda_mix\": \(o.lambdaMix), \"kappa\": \(o.kappa), \"t_err_consensus_accuracy\": [\(pts)]\(extra)}}")
    }
}
