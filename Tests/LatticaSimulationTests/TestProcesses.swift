import LatticaCore
import LatticaSimulation

/// Push gossip of the maximum value: every `period` each node sends its maximum to a random peer.
struct MaxGossip: SimProcess {
    typealias Message = UInt64
    var value: UInt64
    var period: Duration = .milliseconds(100)
    var received = 0

    mutating func onStart(_ ctx: inout SimContext<UInt64>) {
        ctx.setTimer(1, after: .nanoseconds(Int64(ctx.rng.next() % 100_000_000)))
    }

    mutating func onMessage(_ m: UInt64, from: SimNodeID, _ ctx: inout SimContext<UInt64>) {
        received += 1
        value = max(value, m)
    }

    mutating func onTimer(_ id: UInt64, _ ctx: inout SimContext<UInt64>) {
        ctx.send(value, to: ctx.randomPeer())
        ctx.setTimer(1, after: period)
    }

    static func wireSize(of m: UInt64) -> Int { 8 }
    static func fingerprint(of m: UInt64) -> UInt64 { m }
}

/// Records what it receives and which timers fire; sends what it is told to via `perform`.
struct Recorder: SimProcess {
    typealias Message = Int
    var received: [(at: Instant, from: SimNodeID, message: Int)] = []
    var firedTimers: [(at: Instant, id: UInt64)] = []
    var starts = 0

    mutating func onStart(_ ctx: inout SimContext<Int>) { starts += 1 }

    mutating func onMessage(_ m: Int, from: SimNodeID, _ ctx: inout SimContext<Int>) {
        received.append((ctx.now, from, m))
    }

    mutating func onTimer(_ id: UInt64, _ ctx: inout SimContext<Int>) {
        firedTimers.append((ctx.now, id))
    }

    static func fingerprint(of m: Int) -> UInt64 { UInt64(bitPattern: Int64(m)) }
}

extension Instant {
    static func ms(_ v: Int64) -> Instant { Instant(nanoseconds: v * 1_000_000) }
}
