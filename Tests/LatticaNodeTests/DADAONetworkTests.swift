import Foundation
import LatticaAPI
import LatticaCore
import LatticaCRDT
import LatticaData
import LatticaLearning
import Testing
@testable import LatticaNode

/// DADAO between in-process daemons over `/lattica/dadao/1.0.0`: the test plays each node's
/// trainer (its gradient clock and gradients run in the test's tasks, never on a loop thread),
/// the daemons run the gossip clocks and the exchanges.
extension TrainingServiceTests {
    struct DADAOOutcome { var errStart = 0.0, errEnd = 0.0, lossStart = 0.0, lossEnd = 0.0, consensusMax = 0.0, consensusEnd = 0.0, gossips = 0 }

    static let dadaoProblem = Result { DADAO.RidgeProblem(data: try DataFiles.fixture("breast_cancer"), nodes: 3, conditionNumber: 20) }

    func startDADAORun(_ ds: [Daemon], name: String, horizon: Int, unitMs: Int) async throws -> String {
        let t0 = try await train(ds[0])
        let n = ds.count
        let config = RunConfig(dataset: "breast-cancer", model: "ridge:20", rounds: horizon, seed: 1, nodes: n, method: "dadao", timeUnitMs: unitMs)
        let r = try await ds[0].loop.submit { _ in try t0.start(.init(name: name, config: config, shard: "0/\(n)", spawn: false)) }
        for (i, d) in ds.enumerated().dropFirst() { try await join(d, r.run, shard: "\(i)/\(n)") }
        return r.run
    }

    func startDADAO(_ d: Daemon, _ run: String, _ p: DADAO.RidgeProblem, nextMs: Double) async throws -> [Double] {
        let t = try await train(d)
        var rng = SeededRandom(seed: 1)
        let x0 = p.initialPoint(rng: &rng)
        let (x, _) = try await d.loop.submitCallback { _, done in
            t.startDADAO(run: run, x0: x0, L: p.L, mu: p.mu, nextMs: nextMs, gatherUntil: nil) { done($0.mapError { $0 as any Error }) }
        }
        return x
    }

    /// Every node's X now (read on each loop one after the other, within a millisecond or so).
    func models(_ ds: [Daemon]) async throws -> [[Double]] {
        var out: [[Double]] = []
        for d in ds {
            let t = try await train(d)
            out.append(try await d.loop.submit { l in t.run.flatMap { r in r.dadao.map { $0.instance.predictedX(at: $0.clock(l.now)) } } ?? [] })
        }
        return out
    }

    func dadaoRun(gossip: Bool, name: String) async throws -> DADAOOutcome {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let ds = try await daemons(3, tmp)
        defer { Task { for d in ds { await d.stop() } } }
        TrainingService.dadaoGossipEnabled = gossip
        defer { TrainingService.dadaoGossipEnabled = true }
        let horizon = 200, unit = 0.04
        let run = try await startDADAORun(ds, name: name, horizon: horizon, unitMs: 40)
        let p = try Self.dadaoProblem.get()
        let start = ContinuousClock.now
        func elapsed() -> Double { let c = (ContinuousClock.now - start).components; return (Double(c.seconds) + Double(c.attoseconds) / 1e18) / unit }
        // Each node's trainer: a Poisson gradient clock (rate 1 per unit, seeded), the gradient at
        // the X the daemon predicted for the event, handed over at the event.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, d) in ds.enumerated() {
                group.addTask {
                    var clock = SeededRandom(seed: 100 + UInt64(i))
                    func draw() -> Double { -Foundation.log(max(clock.nextDouble(), 1e-300)) }
                    var wait = draw()
                    var x = try await self.startDADAO(d, run, p, nextMs: wait * unit * 1000)
                    let t = try await self.train(d)
                    // An absolute schedule, as lattica-train keeps: a late wake-up (a loaded
                    // machine) is caught up, not carried into every later event.
                    var due = elapsed() + wait
                    while true {
                        let g = p.gradient(node: i, at: x)
                        let ahead = (due - elapsed()) * unit
                        if ahead > 0 { try await Task.sleep(for: .microseconds(Int64(ahead * 1e6))) }  // the Poisson clock's wait
                        if elapsed() >= Double(horizon) { return }
                        wait = draw()
                        due += wait
                        let next = max(0, due - elapsed()) * unit * 1000
                        x = try await d.loop.submit { _ in try t.dadaoGradient(g, nextMs: next).0 }
                    }
                }
            }
            try await group.waitForAll()
        }
        _ = elapsed()
        var o = DADAOOutcome()
        var rng = SeededRandom(seed: 1)
        let x0 = p.initialPoint(rng: &rng)
        o.errStart = p.error(x0)
        o.lossStart = p.loss(at: x0)
        let xs = try await models(ds)
        o.errEnd = xs.map(p.error).reduce(0, +) / 3
        o.lossEnd = xs.map { p.loss(at: $0) }.reduce(0, +) / 3
        o.consensusEnd = Experiment.consensusDistance(xs)
        for d in ds {
            let t = try await train(d)
            o.gossips += try await d.loop.submit { _ in t.run?.dadao?.gossips ?? 0 }
        }
        return o
    }

    /// Three daemons converge together (40 ms per time unit and an absolute gradient schedule: room
    /// for a loaded machine; at 5 and 20 ms the whole suite running beside it starved the clocks): the error to x* and the loss fall, the nodes agree; without
    /// the exchanges (the gossip clocks muted) each node goes to its own shard's optimum.
    @Test func dadao_threeDaemons_convergeTogether_andNotWithoutGossip() async throws {
        let with = try await dadaoRun(gossip: true, name: "dg")
        let without = try await dadaoRun(gossip: false, name: "dn")
        print("DADAO, 3 daemons, t = 200: with gossip err \(with.errEnd), consensus \(with.consensusEnd), loss \(with.lossEnd), \(with.gossips) exchange ends; without: err \(without.errEnd), consensus \(without.consensusEnd), loss \(without.lossEnd)")
        #expect(with.gossips > 150, "\(with)")
        #expect(without.gossips == 0)
        #expect(with.errEnd < with.errStart / 100, "\(with)")
        #expect(with.lossEnd < with.lossStart, "\(with)")
        #expect(with.errEnd < without.errEnd / 20, "with \(with) without \(without)")
        #expect(with.consensusEnd < without.consensusEnd / 20, "with \(with) without \(without)")
    }

    func metric(_ line: String) -> Double {
        let text = String(decoding: MetricsRegistry.shared.render(), as: UTF8.self)
        for l in text.split(separator: "\n") where l.hasPrefix(line + " ") { return Double(l.split(separator: " ").last ?? "0") ?? 0 }
        return 0
    }

    /// A member's exchange with a payload of the wrong dimension, with a NaN, or of bytes that do
    /// not decode is refused (nothing applied), counted and reported; an unknown run is answered so.
    @Test func dadao_badPayloads_areRefused_counted_andReported() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let ds = try await daemons(3, tmp)
        defer { Task { for d in ds { await d.stop() } } }
        TrainingService.dadaoGossipEnabled = false
        defer { TrainingService.dadaoGossipEnabled = true }
        let run = try await startDADAORun(ds, name: "bad", horizon: 1000, unitMs: 5)
        let p = try Self.dadaoProblem.get()
        async let a = startDADAO(ds[0], run, p, nextMs: 5)
        async let b = startDADAO(ds[1], run, p, nextMs: 5)
        async let c = startDADAO(ds[2], run, p, nextMs: 5)
        _ = try await (a, b, c)
        let dims = metric(#"lattica_train_dadao_rejected_total{reason="dimension"}"#)
        let nans = metric(#"lattica_train_dadao_rejected_total{reason="non_finite"}"#)
        let junk = metric(#"lattica_train_dadao_rejected_total{reason="malformed"}"#)
        let target = ds[0].peerId
        func send(_ bytes: [UInt8]) async throws -> DADAO.Wire.Answer {
            let answer: [UInt8] = try await ds[1].onLoop { s, done in s.request(target, DADAO.Wire.protocolID, bytes, timeout: .seconds(5)) { done($0) } }
            return try DADAO.Wire.decodeAnswer(answer, expectedCount: 0)
        }
        var nan = [Double](repeating: 0, count: p.dimension); nan[3] = .nan
        #expect(try await send(DADAO.Wire.encode(.init(run: run, payload: [1, 2]))).status == .refused)
        #expect(try await send(DADAO.Wire.encode(.init(run: run, payload: nan))).status == .refused)
        #expect(try await send([1, 200, 7]).status == .refused)
        #expect(try await send(DADAO.Wire.encode(.init(run: "nope.x", payload: [1]))).status == .unknownRun)
        #expect(metric(#"lattica_train_dadao_rejected_total{reason="dimension"}"#) == dims + 1)
        #expect(metric(#"lattica_train_dadao_rejected_total{reason="non_finite"}"#) == nans + 1)
        #expect(metric(#"lattica_train_dadao_rejected_total{reason="malformed"}"#) == junk + 1)
        let t = try await train(ds[0])
        let (rejected, gossips, state) = try await ds[0].loop.submit { _ in (t.run?.dadao?.rejected ?? 0, t.run?.dadao?.gossips ?? 0, t.status().runs.first?.rejected ?? 0) }
        #expect(rejected == 3 && gossips == 0 && state == 3)
        // Nothing was applied: Z and Z̃, which only exchanges move away from 0, are still 0.
        let z = try await ds[0].loop.submit { _ -> [Double] in
            guard let s = t.run?.dadao?.instance.state else { return [1] }
            return s[4] + s[5]
        }
        #expect(z.allSatisfy { $0 == 0 })
        let reported = try await ds[0].loop.submit { _ -> String? in
            guard case .map(let m)? = ds[0].service(CRDTService.self)!.crdt.state.object(at: "run/\(run)/reports/\(ds[0].peerId)") else { return nil }
            return m[ds[1].peerId.description].flatMap(CRDT.Report.init(value:))?.reason
        }
        #expect(reported == "dadao_dimension")
    }
}
