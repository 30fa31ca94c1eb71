import LatticaCore
import LatticaSimulation
import Testing

@Suite struct LinkModelTests {
    /// Sends `messages` (payload, bytes) from node 0 to node 1 at time zero and returns arrival times.
    private func arrivals(link: LinkModel, _ messages: [(Int, Int)], seed: UInt64 = 1) -> [(Int, Instant)] {
        var net = SimNetwork<Int>(seed: seed, nodes: 2, link: link)
        for (m, bytes) in messages { net.send(m, from: SimNodeID(0), to: SimNodeID(1), bytes: bytes) }
        var out: [(Int, Instant)] = []
        net.runUntilIdle { net, e in
            if case .message(let m, _, _) = e { out.append((m, net.now)) }
        }
        return out
    }

    @Test func latency_delaysEveryMessageByExactlyTheLinkLatency() {
        let got = arrivals(link: LinkModel(latency: .milliseconds(37)), [(1, 0), (2, 1000)])
        #expect(got.map(\.0) == [1, 2])
        #expect(got.map(\.1) == [.ms(37), .ms(37)])
    }

    @Test func bandwidth_addsSerializationDelay_andQueuesMessagesOnTheLink() {
        // 1,000 bytes/s: 500 bytes take 0.5 s on the wire; the second waits for the first.
        let link = LinkModel(latency: .milliseconds(10), bytesPerSecond: 1000)
        let got = arrivals(link: link, [(1, 500), (2, 250), (3, 1)])
        #expect(got.map(\.0) == [1, 2, 3])
        #expect(got.map(\.1) == [.ms(510), .ms(760), .ms(761)])
    }

    @Test func serializationDelay_roundsUpToWholeNanoseconds() {
        #expect(SimNetwork<Int>.transmissionNanoseconds(bytes: 1, bytesPerSecond: 3) == 333_333_334)
        #expect(SimNetwork<Int>.transmissionNanoseconds(bytes: 3, bytesPerSecond: 3) == 1_000_000_000)
        #expect(SimNetwork<Int>.transmissionNanoseconds(bytes: 0, bytesPerSecond: 3) == 0)
        #expect(SimNetwork<Int>.transmissionNanoseconds(bytes: .max, bytesPerSecond: 1) == .max)
    }

    @Test func bandwidth_isPerDirectedLink_soOtherLinksDoNotQueueBehindIt() {
        var net = SimNetwork<Int>(seed: 1, nodes: 3, link: LinkModel(latency: .zero, bytesPerSecond: 100))
        net.send(1, from: SimNodeID(0), to: SimNodeID(1), bytes: 100)
        net.send(2, from: SimNodeID(0), to: SimNodeID(2), bytes: 100)
        net.send(3, from: SimNodeID(1), to: SimNodeID(0), bytes: 100)
        var times: [Int: Instant] = [:]
        net.runUntilIdle { net, e in if case .message(let m, _, _) = e { times[m] = net.now } }
        #expect(times == [1: .ms(1000), 2: .ms(1000), 3: .ms(1000)])
    }

    @Test func jitter_staysWithinItsBound_andNeverReordersALink() {
        var net = SimNetwork<Int>(seed: 4, nodes: 2, link: LinkModel(latency: .milliseconds(50), jitter: .milliseconds(40)))
        var got: [(Int, Duration)] = []
        var sentAt: [Int: Instant] = [:]
        // One message every 10 ms: closer together than the jitter, so FIFO has work to do.
        for i in 0..<2000 {
            sentAt[i] = net.now
            net.send(i, from: SimNodeID(0), to: SimNodeID(1))
            net.run(until: net.now + .milliseconds(10)) { net, e in
                if case .message(let m, _, _) = e { got.append((m, net.now - sentAt[m]!)) }
            }
        }
        net.runUntilIdle { net, e in if case .message(let m, _, _) = e { got.append((m, net.now - sentAt[m]!)) } }
        #expect(got.map(\.0) == Array(0..<2000))
        #expect(got.allSatisfy { $0.1 >= .milliseconds(50) && $0.1 <= .milliseconds(90) })
        // Jitter is real: transit times vary.
        #expect(Set(got.map(\.1)).count > 1000)
    }

    @Test func jitter_reordersMessages_whenTheLinkDoesNotPreserveOrder() {
        let link = LinkModel(latency: .milliseconds(50), jitter: .milliseconds(40), preservesOrder: false)
        let got = arrivals(link: link, (0..<200).map { ($0, 0) })
        #expect(got.count == 200)
        #expect(got.map(\.0) != Array(0..<200))
        #expect(zip(got, got.dropFirst()).allSatisfy { $0.1 <= $1.1 })
    }

    @Test func linkOverride_appliesToItsDirectionOnly() {
        var net = SimNetwork<Int>(seed: 1, nodes: 2, link: LinkModel(latency: .milliseconds(10)))
        net.setLink(from: SimNodeID(0), to: SimNodeID(1), LinkModel(latency: .milliseconds(200)))
        net.send(1, from: SimNodeID(0), to: SimNodeID(1))
        net.send(2, from: SimNodeID(1), to: SimNodeID(0))
        var times: [Int: Instant] = [:]
        net.runUntilIdle { net, e in if case .message(let m, _, _) = e { times[m] = net.now } }
        #expect(times == [1: .ms(200), 2: .ms(10)])
    }

    @Test func accessLatency_isAddedOncePerEndpoint() {
        var net = SimNetwork<Int>(seed: 1, nodes: 3, link: LinkModel(latency: .milliseconds(10)))
        net.setAccessLatency(.milliseconds(5), for: SimNodeID(0))
        net.setAccessLatency(.milliseconds(7), for: SimNodeID(1))
        net.send(1, from: SimNodeID(0), to: SimNodeID(1))
        net.send(2, from: SimNodeID(1), to: SimNodeID(2))
        net.send(3, from: SimNodeID(2), to: SimNodeID(0))
        var times: [Int: Instant] = [:]
        net.runUntilIdle { net, e in if case .message(let m, _, _) = e { times[m] = net.now } }
        #expect(times == [1: .ms(22), 2: .ms(17), 3: .ms(15)])
    }

    @Test func lossRate_overManyMessages_isWithinFiveStandardDeviations() {
        let n = 100_000, p = 0.1
        var net = SimNetwork<Int>(seed: 99, nodes: 2, link: LinkModel(latency: .milliseconds(1), loss: p))
        for i in 0..<n { net.send(i, from: SimNodeID(0), to: SimNodeID(1)) }
        var delivered = 0
        net.runUntilIdle { _, e in if case .message = e { delivered += 1 } }
        let lost = Double(net.counters.droppedByLoss)
        let sigma = (Double(n) * p * (1 - p)).squareRoot()
        #expect(abs(lost - Double(n) * p) < 5 * sigma)
        #expect(delivered + net.counters.droppedByLoss == n)
        #expect(net.counters.delivered == delivered)
    }

    @Test func lossOfOne_dropsEverything_andLossOfZero_dropsNothing() {
        var net = SimNetwork<Int>(seed: 3, nodes: 3, link: LinkModel(loss: 0))
        net.setLink(from: SimNodeID(0), to: SimNodeID(2), LinkModel(loss: 1))
        for i in 0..<100 {
            net.send(i, from: SimNodeID(0), to: SimNodeID(1))
            net.send(i, from: SimNodeID(0), to: SimNodeID(2))
        }
        net.runUntilIdle { _, _ in }
        #expect(net.counters.delivered == 100)
        #expect(net.counters.droppedByLoss == 100)
    }
}
