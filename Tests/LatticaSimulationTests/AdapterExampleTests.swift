import LatticaCore
import LatticaSimulation
import Testing

/// A tiny sans-I/O protocol in the project's style (Instance / Message / Directive, time as a
/// parameter): request with a timeout, retried up to `maxAttempts` times.
enum Echo {
    typealias Peer = String  // stands in for PeerId
    enum Message: Hashable { case request(id: Int), response(id: Int) }
    enum Directive: Hashable {
        case send(Message, to: Peer)
        case scheduleTimer(id: UInt64, at: Instant)
        case cancelTimer(id: UInt64)
        case completed(id: Int, attempts: Int)
        case failed(id: Int)
    }

    struct Instance {
        var timeout: Duration = .milliseconds(300)
        var maxAttempts = 4
        private var outstanding: [Int: (peer: Peer, attempts: Int)] = [:]

        mutating func request(_ id: Int, to peer: Peer, now: Instant) -> [Directive] {
            outstanding[id] = (peer, 1)
            return [.send(.request(id: id), to: peer), .scheduleTimer(id: UInt64(id), at: now + timeout)]
        }

        mutating func onMessage(_ m: Message, from peer: Peer, now: Instant) -> [Directive] {
            switch m {
            case .request(let id):
                return [.send(.response(id: id), to: peer)]
            case .response(let id):
                guard let o = outstanding.removeValue(forKey: id) else { return [] }  // late duplicate
                return [.cancelTimer(id: UInt64(id)), .completed(id: id, attempts: o.attempts)]
            }
        }

        mutating func onTimer(_ t: UInt64, now: Instant) -> [Directive] {
            let id = Int(t)
            guard var o = outstanding[id] else { return [] }
            if o.attempts == maxAttempts {
                outstanding[id] = nil
                return [.failed(id: id)]
            }
            o.attempts += 1
            outstanding[id] = o
            return [.send(.request(id: id), to: o.peer), .scheduleTimer(id: t, at: now + timeout)]
        }
    }
}

/// The adapter: maps peers to node ids and directives to context calls, and keeps the events.
struct EchoNode: SimProcess {
    typealias Message = Echo.Message
    var instance = Echo.Instance()
    var completed: [Int: Int] = [:]  // id -> attempts
    var failed: Set<Int> = []

    static func peer(_ node: SimNodeID) -> Echo.Peer { "peer-\(node.raw)" }
    static func node(_ peer: Echo.Peer) -> SimNodeID { SimNodeID(Int(peer.dropFirst(5))!) }

    mutating func onMessage(_ m: Message, from: SimNodeID, _ ctx: inout SimContext<Message>) {
        apply(instance.onMessage(m, from: Self.peer(from), now: ctx.now), &ctx)
    }

    mutating func onTimer(_ id: UInt64, _ ctx: inout SimContext<Message>) {
        apply(instance.onTimer(id, now: ctx.now), &ctx)
    }

    mutating func apply(_ directives: [Echo.Directive], _ ctx: inout SimContext<Message>) {
        for d in directives {
            switch d {
            case .send(let m, let peer): ctx.send(m, to: Self.node(peer))
            case .scheduleTimer(let id, let at): ctx.setTimer(id, at: at)
            case .cancelTimer(let id): ctx.cancelTimer(id)
            case .completed(let id, let attempts): completed[id] = attempts
            case .failed(let id): failed.insert(id)
            }
        }
    }

    static func wireSize(of m: Message) -> Int { 16 }
    static func fingerprint(of m: Message) -> UInt64 {
        switch m {
        case .request(let id): UInt64(id) << 1
        case .response(let id): UInt64(id) << 1 | 1
        }
    }
}

@Suite struct AdapterExampleTests {
    @Test func adaptedInstance_retriesOnTimeout_andAccountsForEveryRequest_underThirtyPercentLoss() {
        var sim = Simulation<EchoNode>(seed: 31, link: LinkModel(latency: .milliseconds(50), jitter: .milliseconds(20), loss: 0.3))
        let client = sim.addNode(EchoNode()), server = sim.addNode(EchoNode())
        let requests = 2000
        for id in 0..<requests {
            sim.schedule(at: .ms(Int64(id) * 10)) { sim in
                sim.perform(on: client) { node, ctx in
                    node.apply(node.instance.request(id, to: EchoNode.peer(server), now: ctx.now), &ctx)
                }
            }
        }
        let idle = sim.runUntilIdle(limit: 1_000_000)
        #expect(idle)
        let c = sim[client]
        // Every request ends exactly once, completed or failed.
        #expect(c.completed.count + c.failed.count == requests)
        #expect(Set(c.completed.keys).isDisjoint(with: c.failed))
        // A round trip survives with probability 0.7^2 = 0.49; after 4 attempts 1 - 0.51^4 = 93%.
        let rate = Double(c.completed.count) / Double(requests)
        #expect(rate > 0.90 && rate < 0.96)
        #expect(c.completed.values.contains { $0 > 1 })
        // Nothing is left armed once everything has ended.
        #expect(sim.network.armedTimerCount(of: client) == 0)
    }
}
