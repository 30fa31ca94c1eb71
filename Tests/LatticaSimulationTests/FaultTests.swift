import LatticaCore
import LatticaSimulation
import Testing

@Suite struct FaultTests {
    @Test func partition_dropsCrossPartitionTraffic_andHealingRestoresIt() {
        var sim = Simulation<Recorder>(seed: 5, link: LinkModel(latency: .milliseconds(10)))
        for _ in 0..<4 { sim.addNode(Recorder()) }
        sim.run(until: .ms(1))
        let (a, b, c, d) = (SimNodeID(0), SimNodeID(1), SimNodeID(2), SimNodeID(3))
        sim.network.partition([[a, b], [c, d]])
        sim.perform(on: a) { _, ctx in
            ctx.send(1, to: b)  // same side
            ctx.send(2, to: c)  // across
        }
        sim.perform(on: d) { _, ctx in ctx.send(3, to: a) }
        sim.run(until: .ms(100))
        #expect(sim[b].received.map(\.message) == [1])
        #expect(sim[c].received.isEmpty)
        #expect(sim[a].received.isEmpty)
        #expect(sim.counters.droppedByPartition == 2)

        sim.network.heal()
        sim.perform(on: a) { _, ctx in ctx.send(4, to: c) }
        sim.perform(on: d) { _, ctx in ctx.send(5, to: a) }
        sim.run(until: .ms(200))
        #expect(sim[c].received.map(\.message) == [4])
        #expect(sim[a].received.map(\.message) == [5])
    }

    @Test func messagesInFlight_whenAPartitionStarts_areDroppedOnArrival() {
        var net = SimNetwork<Int>(seed: 5, nodes: 2, link: LinkModel(latency: .milliseconds(50)))
        net.send(1, from: SimNodeID(0), to: SimNodeID(1))
        net.run(until: .ms(10)) { _, _ in }
        net.isolate(SimNodeID(1))
        var got: [Int] = []
        net.runUntilIdle { _, e in if case .message(let m, _, _) = e { got.append(m) } }
        #expect(got.isEmpty)
        #expect(net.counters.droppedByPartition == 1)
    }

    @Test func blockedLink_dropsOneDirectionOnly() {
        var net = SimNetwork<Int>(seed: 5, nodes: 2)
        net.block(from: SimNodeID(0), to: SimNodeID(1))
        net.send(1, from: SimNodeID(0), to: SimNodeID(1))
        net.send(2, from: SimNodeID(1), to: SimNodeID(0))
        var got: [Int] = []
        net.runUntilIdle { _, e in if case .message(let m, _, _) = e { got.append(m) } }
        #expect(got == [2])
        #expect(!net.canReach(from: SimNodeID(0), to: SimNodeID(1)))
        #expect(net.canReach(from: SimNodeID(1), to: SimNodeID(0)))
    }

    @Test func crashedNode_receivesNothing_andItsTimersDoNotFire() {
        var sim = Simulation<Recorder>(seed: 8, link: LinkModel(latency: .milliseconds(10)))
        let a = sim.addNode(Recorder()), b = sim.addNode(Recorder())
        sim.run(until: .ms(1))
        sim.perform(on: b) { _, ctx in
            ctx.setTimer(7, after: .milliseconds(20))
            ctx.setTimer(8, after: .milliseconds(500))
        }
        sim.perform(on: a) { _, ctx in ctx.send(1, to: b) }  // in flight when b crashes
        sim.run(until: .ms(5))
        sim.crash(b)
        sim.perform(on: a) { _, ctx in ctx.send(2, to: b) }  // sent while b is down
        sim.run(until: .ms(100))
        sim.restart(b)
        sim.run(until: .ms(1000))
        #expect(sim[b].received.isEmpty)
        #expect(sim[b].firedTimers.isEmpty)
        #expect(sim[b].starts == 2)
        #expect(sim.counters.droppedByCrash == 2)
        #expect(sim.counters.timersDroppedByCrash == 2)

        // After the restart it is reachable again.
        sim.perform(on: a) { _, ctx in ctx.send(3, to: b) }
        sim.run(until: .ms(1100))
        #expect(sim[b].received.map(\.message) == [3])
    }

    @Test func restart_preservesState_orStartsFresh_asAsked() {
        var sim = Simulation<MaxGossip>(seed: 8)
        let a = sim.addNode(MaxGossip(value: 1)), b = sim.addNode(MaxGossip(value: 2))
        sim.run(until: .ms(500))
        let valueBefore = sim[a].value
        #expect(valueBefore == 2)
        sim.crash(a)
        sim.restart(a)
        sim.run(until: .ms(501))
        #expect(sim[a].value == valueBefore)

        sim.crash(b)
        sim.restart(b, with: MaxGossip(value: 0))
        sim.run(until: .ms(502))
        #expect(sim[b].value == 0)
        #expect(sim[b].received == 0)

        sim.restartPolicy = .fresh { _ in MaxGossip(value: 0) }
        sim.crash(a)
        sim.restart(a)
        sim.run(until: .ms(503))
        #expect(sim[a].received == 0)
    }

    @Test func churnSchedule_isDeterministicInItsSeed_andAlternatesCrashAndRestart() {
        func make(_ seed: UInt64) -> ChurnSchedule {
            var rng = SeededRandom(seed: seed)
            return ChurnSchedule.random(
                nodes: (0..<50).map { SimNodeID($0) }, from: .zero, until: .ms(60_000),
                meanUptime: .seconds(10), meanDowntime: .seconds(2), rng: &rng)
        }
        let s = make(1)
        #expect(s == make(1))
        #expect(s != make(2))
        for node in 0..<50 {
            let actions = s.entries.filter { $0.node.raw == node }.map(\.action)
            for (i, a) in actions.enumerated() { #expect(a == (i % 2 == 0 ? .crash : .restart)) }
        }
        // About 60 s / 12 s per cycle * 2 actions * 50 nodes = 500 entries.
        #expect(s.entries.count > 300 && s.entries.count < 700)
        #expect(zip(s.entries, s.entries.dropFirst()).allSatisfy { $0.time <= $1.time })
    }

    @Test func scheduledActions_runInOrderWithOtherEvents() {
        var sim = Simulation<Recorder>(seed: 2, link: LinkModel(latency: .milliseconds(10)))
        let a = sim.addNode(Recorder()), b = sim.addNode(Recorder())
        sim.schedule(at: .ms(20)) { sim in sim.perform(on: a) { _, ctx in ctx.send(1, to: b) } }
        sim.schedule(at: .ms(25)) { sim in sim.network.isolate(b) }
        sim.schedule(at: .ms(40)) { sim in sim.perform(on: a) { _, ctx in ctx.send(2, to: b) } }
        sim.run(until: .ms(100))
        #expect(sim[b].received.map(\.message) == [])
        #expect(sim.counters.droppedByPartition == 2)
        sim.network.heal()
        sim.schedule(at: .ms(110)) { sim in sim.perform(on: a) { _, ctx in ctx.send(3, to: b) } }
        sim.run(until: .ms(200))
        #expect(sim[b].received.map(\.at) == [.ms(120)])
    }
}
