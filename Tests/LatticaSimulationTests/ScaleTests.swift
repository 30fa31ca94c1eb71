#if canImport(Glibc)
import Glibc  // thread CPU time for the printed rates (tests may; the module may not)
#endif
import LatticaCore
import LatticaSimulation
import Testing

/// A random walk token: forwarded to a random peer until its hops run out.
struct RandomWalker: SimProcess {
    struct Message { var origin: Int32; var hopsLeft: Int32 }
    var hops: Int32
    var finished = 0
    var forwarded = 0

    mutating func onStart(_ ctx: inout SimContext<Message>) {
        ctx.send(Message(origin: Int32(ctx.me.raw), hopsLeft: hops), to: ctx.randomPeer())
    }

    mutating func onMessage(_ m: Message, from: SimNodeID, _ ctx: inout SimContext<Message>) {
        if m.hopsLeft <= 1 {
            finished += 1
        } else {
            forwarded += 1
            ctx.send(Message(origin: m.origin, hopsLeft: m.hopsLeft - 1), to: ctx.randomPeer())
        }
    }

    static func wireSize(of m: Message) -> Int { 64 }
    static func fingerprint(of m: Message) -> UInt64 { UInt64(UInt32(bitPattern: m.origin)) << 32 | UInt64(UInt32(bitPattern: m.hopsLeft)) }
}

/// CPU seconds used by the calling thread (wall time is meaningless on a machine shared by builds).
func threadCPUSeconds() -> Double {
    #if canImport(Glibc)
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    #else
    return 0
    #endif
}

@Suite struct ScaleTests {
    @Test func tenThousandNodes_carryAMillionRandomWalkMessagesWithJitterAndBandwidth_andEveryWalkEnds() {
        // Full size in release (CI); a tenth in debug builds so local runs stay quick.
        #if DEBUG
        let nodes = 1_000
        #else
        let nodes = 10_000
        #endif
        let hops: Int32 = 100
        var sim = Simulation<RandomWalker>(
            seed: 77, link: LinkModel(latency: .milliseconds(40), jitter: .milliseconds(30), bytesPerSecond: 1_000_000))
        for _ in 0..<nodes { sim.addNode(RandomWalker(hops: hops)) }
        let clock = ContinuousClock()
        let start = clock.now, cpuStart = threadCPUSeconds()
        let idle = sim.runUntilIdle(limit: 5_000_000)
        let elapsed = (clock.now - start).secondsDouble, cpu = threadCPUSeconds() - cpuStart
        #expect(idle)
        #expect(sim.counters.sent == nodes * Int(hops))
        #expect(sim.counters.delivered == sim.counters.sent)
        #expect(sim.allProcesses.reduce(0) { $0 + $1.finished } == nodes)
        let rate = Double(sim.eventsHandled) / elapsed
        print("scale: \(nodes) nodes, \(sim.eventsHandled) events: wall \(elapsed) s (\(Int(rate)) events/s), "
            + "CPU \(cpu) s (\(Int(Double(sim.eventsHandled) / cpu)) events/s); virtual \(sim.now)")
    }

    @Test func tenThousandGossipNodes_withTimersLossAndJitter_allLearnTheMaximumWithinTheRoundBound() {
        #if DEBUG
        let nodes = 1_000
        #else
        let nodes = 10_000
        #endif
        var sim = Simulation<MaxGossip>(
            seed: 5, link: LinkModel(latency: .milliseconds(20), jitter: .milliseconds(20), loss: 0.01))
        for i in 0..<nodes { sim.addNode(MaxGossip(value: UInt64(i))) }
        // Push gossip needs about log2 n + ln n rounds (22.5 for 10,000); allow 1.5x of the rounded-up
        // ceil(log2 n) + 0.7 ceil(log2 n), 100 ms each.
        let n = Double(nodes)
        let rounds = Int64((1.5 * (Double(n.exponent) + 1 + 0.7 * (Double(n.exponent) + 1))).rounded(.up))
        let cpuStart = threadCPUSeconds()
        sim.run(until: .ms(100 * rounds))
        let cpu = threadCPUSeconds() - cpuStart
        let maximum = UInt64(nodes - 1)
        #expect(sim.allProcesses.allSatisfy { $0.value == maximum })
        #expect(sim.counters.timersFired >= nodes * Int(rounds - 1))
        print("gossip: \(nodes) nodes, \(rounds) rounds, \(sim.eventsHandled) events, CPU \(cpu) s")
    }

    @Test func clock_aloneHandlesMillionsOfEventsPerSecond() {
        var clock = VirtualClock<UInt32>()
        var rng = SeededRandom(seed: 1)
        // A steady population of 100,000 pending events, each replaced by a later one when it runs.
        for i in 0..<100_000 { clock.schedule(UInt32(i), at: Instant(nanoseconds: Int64(rng.next() % 1_000_000))) }
        let wall = ContinuousClock()
        let start = wall.now, cpuStart = threadCPUSeconds()
        var ran = 0
        #if DEBUG
        let events = 200_000
        #else
        let events = 2_000_000
        #endif
        clock.runUntilIdle(limit: events) { clock, e in
            ran += 1
            clock.schedule(e, after: .nanoseconds(Int64(rng.next() % 1_000_000)))
        }
        let elapsed = (wall.now - start).secondsDouble, cpu = threadCPUSeconds() - cpuStart
        #expect(ran == events)
        #expect(clock.pendingCount == 100_000)
        print("clock: \(ran) events with 100k pending: wall \(elapsed) s (\(Int(Double(ran) / elapsed)) events/s), "
            + "CPU \(cpu) s (\(Int(Double(ran) / cpu)) events/s)")
    }
}
