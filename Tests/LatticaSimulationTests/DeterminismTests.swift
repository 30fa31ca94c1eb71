import Foundation  // log2/log for the theoretical bound (tests may; the module may not)
import LatticaCore
import LatticaSimulation
import Testing

@Suite struct DeterminismTests {
    struct Outcome: Equatable {
        var digest: UInt64
        var counters: SimCounters
        var values: [UInt64]
        var eventsHandled: Int
    }

    /// 200 nodes gossiping their maximum with 5% loss, jitter and churn for 20 s, then 10 s calm.
    func gossipRun(seed: UInt64) -> Outcome {
        var sim = Simulation<MaxGossip>(
            seed: seed, link: LinkModel(latency: .milliseconds(30), jitter: .milliseconds(20), loss: 0.05))
        for i in 0..<200 { sim.addNode(MaxGossip(value: UInt64(i) &* 0x9E37_79B9 % 1_000_003)) }
        var rng = sim.network.rng.fork()
        let churn = ChurnSchedule.random(
            nodes: sim.nodeIDs.filter { $0.raw % 4 == 0 }, from: .zero, until: .ms(20_000),
            meanUptime: .seconds(5), meanDowntime: .seconds(1), restartAllAtEnd: true, rng: &rng)
        sim.apply(churn)
        sim.run(until: .ms(30_000))
        return Outcome(
            digest: sim.digest, counters: sim.counters, values: sim.allProcesses.map(\.value),
            eventsHandled: sim.eventsHandled)
    }

    @Test func sameSeed_replaysBitForBit_onA200NodeGossipRunWithLossJitterAndChurn() {
        let a = gossipRun(seed: 2024)
        let b = gossipRun(seed: 2024)
        #expect(a == b)
        // The run exercised every fault it claims to.
        #expect(a.counters.droppedByLoss > 0)
        #expect(a.counters.droppedByCrash > 0)
        #expect(a.counters.crashes > 0)
        #expect(a.counters.timersDroppedByCrash > 0)
        #expect(a.counters.starts == 200 + a.counters.crashes)
    }

    @Test func differentSeed_givesADifferentDigest() {
        let a = gossipRun(seed: 2024)
        let c = gossipRun(seed: 2025)
        #expect(a.digest != c.digest)
        #expect(a.counters != c.counters)
    }

    @Test func gossip_convergesWithinTenSeconds_afterChurnStops() {
        let a = gossipRun(seed: 7)
        let maximum = a.values.max()!
        #expect(a.values.allSatisfy { $0 == maximum })
    }

    @Test func trace_seesEveryDeliveryAndDrop_andDoesNotChangeTheRun() {
        final class Log { var delivered = 0; var dropped = 0; var sent = 0; var timers = 0 }
        let log = Log()
        func run(traced: Bool) -> (UInt64, SimCounters) {
            var sim = Simulation<MaxGossip>(seed: 3, link: LinkModel(latency: .milliseconds(10), loss: 0.1))
            if traced {
                sim.network.trace = { _, e in
                    switch e {
                    case .sent: log.sent += 1
                    case .delivered: log.delivered += 1
                    case .dropped: log.dropped += 1
                    case .timerFired: log.timers += 1
                    default: break
                    }
                }
            }
            for i in 0..<20 { sim.addNode(MaxGossip(value: UInt64(i))) }
            sim.run(until: .ms(2000))
            return (sim.digest, sim.counters)
        }
        let plain = run(traced: false)
        let traced = run(traced: true)
        #expect(plain == traced)
        #expect(log.delivered == traced.1.delivered)
        #expect(log.dropped == traced.1.dropped)
        #expect(log.timers == traced.1.timersFired)
        // Loss is decided at send time, so lost messages are traced as dropped, never as sent.
        #expect(log.sent == traced.1.sent - traced.1.droppedByLoss)
        #expect(traced.1.droppedByLoss > 0)
    }
}

@Suite struct ConvergenceTests {
    /// Push gossip spreads a rumor to n nodes in about log2(n) + ln(n) rounds (Frieze & Grimmett;
    /// Pittel 1987). Checks the simulator reproduces that bound, not just "it converged".
    @Test func pushGossip_reachesEveryNode_withinOneAndAHalfTimesTheTheoreticalRoundCount() {
        let n = 500
        let expectedRounds = log2(Double(n)) + log(Double(n))
        for seed in UInt64(1)...5 {
            var sim = Simulation<MaxGossip>(seed: seed, link: LinkModel(latency: .milliseconds(1)))
            for i in 0..<n { sim.addNode(MaxGossip(value: i == 0 ? 1 : 0)) }
            var rounds = 0
            while sim.allProcesses.contains(where: { $0.value == 0 }) && rounds < 100 {
                sim.run(for: .milliseconds(100))
                rounds += 1
            }
            #expect(Double(rounds) <= 1.5 * expectedRounds, "seed \(seed): \(rounds) rounds")
        }
    }
}
