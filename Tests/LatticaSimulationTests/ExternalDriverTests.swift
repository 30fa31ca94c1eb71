import LatticaCore
import LatticaSimulation
import Testing

/// Round-based protocols (the learning layer) drive `SimNetwork` themselves.
@Suite struct ExternalDriverTests {
    @Test func roundBasedAveraging_overTheNetworkDirectly_conservesTheSumAndConverges() {
        let n = 16
        var net = SimNetwork<Double>(seed: 12, nodes: n, link: LinkModel(latency: .milliseconds(20), jitter: .milliseconds(10)))
        var values = (0..<n).map { Double($0) }
        let total = values.reduce(0, +)
        let round = Duration.milliseconds(100)
        var late = 0
        for r in 0..<40 {
            let deadline = net.now + round
            // Push-sum style pairwise exchange: i keeps half and sends half to a partner.
            let shift = 1 << (r % 4)
            for i in 0..<n {
                values[i] /= 2
                net.send(values[i], from: SimNodeID(i), to: SimNodeID((i + shift) % n), bytes: 8)
            }
            net.run(until: deadline) { net, event in
                guard case .message(let v, _, let to) = event else { return }
                if net.now > deadline { late += 1 }
                values[to.raw] += v
            }
            #expect(net.now == deadline)
        }
        #expect(late == 0)
        #expect(abs(values.reduce(0, +) - total) < 1e-9)
        let mean = total / Double(n)
        #expect(values.allSatisfy { abs($0 - mean) < 1e-6 })
    }

    @Test func wakeups_interleaveWithMessagesByTime() {
        var net = SimNetwork<Int>(seed: 1, nodes: 2, link: LinkModel(latency: .milliseconds(10)))
        net.schedule(wakeup: 100, at: .ms(5))
        net.send(1, from: SimNodeID(0), to: SimNodeID(1))
        net.schedule(wakeup: 200, at: .ms(10))  // same time as the message, scheduled later
        var order: [String] = []
        net.runUntilIdle { net, e in
            switch e {
            case .wakeup(let t): order.append("w\(t)@\(net.now.nanoseconds / 1_000_000)")
            case .message(let m, _, _): order.append("m\(m)@\(net.now.nanoseconds / 1_000_000)")
            default: break
            }
        }
        #expect(order == ["w100@5", "m1@10", "w200@10"])
    }

    @Test func timers_canBeArmedReplacedAndCancelled_byAnExternalDriver() {
        var net = SimNetwork<Int>(seed: 1, nodes: 1)
        let a = SimNodeID(0)
        net.setTimer(1, for: a, at: .ms(10))
        net.setTimer(1, for: a, at: .ms(30))  // replaces the first
        net.setTimer(2, for: a, at: .ms(20))
        net.setTimer(3, for: a, at: .ms(25))
        net.cancelTimer(3, for: a)
        var fired: [(UInt64, Instant)] = []
        net.runUntilIdle { net, e in if case .timer(let id, _) = e { fired.append((id, net.now)) } }
        #expect(fired.map(\.0) == [2, 1])
        #expect(fired.map(\.1) == [.ms(20), .ms(30)])
        #expect(net.armedTimerCount(of: a) == 0)
    }

    @Test func cancelledTimers_areSweptFromTheQueue_andLiveTimersStillFireOnTime() {
        var net = SimNetwork<Int>(seed: 1, nodes: 10)
        // A request/timeout pattern: arm a 10 s timeout per request, cancel it on the reply.
        for i in 0..<100_000 {
            let node = SimNodeID(i % 10)
            net.setTimer(UInt64(i), for: node, at: .ms(10_000 + Int64(i)))
            if i % 1000 != 0 { net.cancelTimer(UInt64(i), for: node) }
        }
        #expect(net.pendingEventCount < 10_000)
        var fired: [(UInt64, Instant)] = []
        net.runUntilIdle { net, e in if case .timer(let id, _) = e { fired.append((id, net.now)) } }
        #expect(fired.map(\.0) == stride(from: 0, to: 100_000, by: 1000).map { UInt64($0) })
        #expect(fired.allSatisfy { $0.1 == .ms(10_000 + Int64($0.0)) })
    }
}
