import LatticaCore
@testable import LatticaDHT

/// A deterministic discrete-event network for DHT instances: virtual clock, per-link latency,
/// dead nodes (requests to them time out), partitions, and scripted adversaries. Every run
/// replays from its seed. (Kept local to the DHT tests; it only interprets `DHT.Directive`s.)
struct KadSim {
    enum Behavior { case honest, sybil, garbage, returnsItself, dead }

    enum Event {
        case request(from: Int, to: Int, DHT.Message, [UInt8]?, DHT.RequestID, expectsResponse: Bool)
        case response(to: Int, DHT.Message, [UInt8]?, DHT.RequestID)
        case delivered(to: Int, DHT.RequestID)
        case failed(to: Int, DHT.RequestID)
        case timer(node: Int, DHT.TimerID)
    }

    struct Scheduled: Comparable {
        var at: Instant
        var seq: UInt64
        var event: Event
        static func < (a: Self, b: Self) -> Bool { a.at != b.at ? a.at < b.at : a.seq < b.seq }
        static func == (a: Self, b: Self) -> Bool { a.at == b.at && a.seq == b.seq }
    }

    var nodes: [DHT.Instance] = []
    var peers: [PeerId] = []
    var keys: [DHT.Key] = []
    var index: [PeerId: Int] = [:]
    var behavior: [Behavior] = []
    var group: [Int] = []
    var now: Instant = .zero
    var rng: SeededRandom
    var heap: [Scheduled] = []
    var seq: UInt64 = 0
    /// Encode every message to bytes and decode it at the receiver (exercises the codec).
    var useBytes: Bool
    var results: [Int: [DHT.QueryID: (DHT.QueryResult, DHT.QueryStats)]] = [:]
    var misbehaviorReports: [(reporter: Int, peer: PeerId, DHT.Misbehavior)] = []
    var bootstrapEvents: [(node: Int, DHT.BootstrapEvent)] = []
    var messagesDelivered = 0
    var sybilIDs: [(peer: PeerId, key: DHT.Key)] = []

    init(seed: UInt64, useBytes: Bool = false) {
        rng = SeededRandom(seed: seed)
        self.useBytes = useBytes
    }

    static func makePeer(_ rng: inout SeededRandom) -> PeerId {
        var pk: [UInt8] = []
        for _ in 0..<4 { let r = rng.next(); for j in 0..<8 { pk.append(UInt8(truncatingIfNeeded: r >> (8 * UInt64(j)))) } }
        return PeerId(ed25519PublicKey: pk)
    }

    @discardableResult
    mutating func addNode(settings: DHT.Settings = .init(), behavior b: Behavior = .honest,
                          validator: DHT.Validator = DHT.Validator(verify: nil)) -> Int {
        let peer = Self.makePeer(&rng)
        let i = nodes.count
        nodes.append(DHT.Instance(localPeer: peer, settings: settings, validator: validator, seed: rng.next()))
        peers.append(peer)
        keys.append(nodes[i].localKey)
        index[peer] = i
        behavior.append(b)
        group.append(0)
        if b == .sybil { sybilIDs.append((peer, nodes[i].localKey)) }
        return i
    }

    // MARK: Event loop

    mutating func schedule(_ e: Event, at: Instant) {
        seq += 1
        heap.append(Scheduled(at: at, seq: seq, event: e))
        var c = heap.count - 1
        while c > 0 { let p = (c - 1) / 2; if heap[c] < heap[p] { heap.swapAt(c, p); c = p } else { break } }
    }

    mutating func pop() -> Scheduled? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var p = 0
        while true {
            let l = 2 * p + 1, r = l + 1
            var m = p
            if l < heap.count && heap[l] < heap[m] { m = l }
            if r < heap.count && heap[r] < heap[m] { m = r }
            if m == p { break }
            heap.swapAt(p, m); p = m
        }
        return top
    }

    func latency(_ a: Int, _ b: Int) -> Duration {
        // The attacker is well connected: its answers always arrive first.
        if behavior[a] == .sybil || behavior[b] == .sybil { return .milliseconds(1) }
        // Deterministic per link, 10–60 ms.
        var h = UInt64(truncatingIfNeeded: min(a, b)) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(truncatingIfNeeded: max(a, b))
        h ^= h >> 29; h = h &* 0xBF58_476D_1CE4_E5B9; h ^= h >> 32
        return .milliseconds(10 + Int64(h % 50))
    }

    func reachable(_ a: Int, _ b: Int) -> Bool {
        behavior[b] != .dead && behavior[a] != .dead && group[a] == group[b]
    }

    mutating func apply(_ directives: [DHT.Directive], node i: Int) {
        for d in directives {
            switch d {
            case .send(let m, let to, _, let rid, let expects):
                guard let j = index[to], reachable(i, j) else { continue }  // times out at the sender
                schedule(.request(from: i, to: j, m, useBytes ? m.encoded() : nil, rid, expectsResponse: expects), at: now + latency(i, j))
            case .respond, .resetInbound:
                preconditionFailure("responses are handled inline")
            case .scheduleTimer(let t, let at):
                schedule(.timer(node: i, t), at: max(at, now))
            case .queryFinished(let q, let r, let s):
                results[i, default: [:]][q] = (r, s)
            case .peerMisbehaved(let p, let why):
                misbehaviorReports.append((i, p, why))
            case .routingTableUpdated, .persist:  // the simulated nodes keep their store in memory
                break
            case .bootstrap(let e):
                bootstrapEvents.append((i, e))
            }
        }
    }

    mutating func step(_ s: Scheduled) {
        now = s.at
        switch s.event {
        case .request(let from, let to, let m, let bytes, let rid, let expects):
            messagesDelivered += 1
            guard reachable(from, to) else { return }
            if !expects { schedule(.delivered(to: from, rid), at: now) }
            let reply = answer(to, m, bytes, from: from)
            for d in reply {
                switch d {
                case .respond(let r, _, _):
                    if expects { schedule(.response(to: from, r, useBytes ? r.encoded() : nil, rid), at: now + latency(from, to)) }
                case .resetInbound:
                    if expects { schedule(.failed(to: from, rid), at: now + latency(from, to)) }
                default: break
                }
            }
            apply(reply.filter { if case .respond = $0 { return false }; if case .resetInbound = $0 { return false }; return true }, node: to)
        case .response(let to, let m, let bytes, let rid):
            guard behavior[to] != .dead else { return }
            let out = bytes.map { nodes[to].onResponse($0[...], request: rid, now: now) } ?? nodes[to].onResponse(m, request: rid, now: now)
            apply(out, node: to)
        case .delivered(let to, let rid):
            apply(nodes[to].onRequestDelivered(rid, now: now), node: to)
        case .failed(let to, let rid):
            apply(nodes[to].onRequestFailed(rid, now: now), node: to)
        case .timer(let n, let t):
            guard behavior[n] != .dead else { return }
            apply(nodes[n].onTimer(t, now: now), node: n)
        }
    }

    /// The receiver's answer, honest or scripted.
    mutating func answer(_ j: Int, _ m: DHT.Message, _ bytes: [UInt8]?, from i: Int) -> [DHT.Directive] {
        let inbound = DHT.InboundID(0)
        switch behavior[j] {
        case .honest:
            // Identify told the receiver the requester is a DHT server.
            _ = nodes[j].onPeerConnected(peers[i], key: keys[i], addresses: [], now: now)
            if let bytes { return nodes[j].onRequest(bytes[...], from: peers[i], inbound: inbound, now: now) }
            return nodes[j].onRequest(m, from: peers[i], inbound: inbound, now: now)
        case .sybil:
            // Eclipse attempt: only ever name fellow Sybils, the ones closest to the target.
            let t = DHT.Key(hashing: m.key)
            let fellows = sybilIDs.filter { $0.peer != peers[j] }
                .sorted { $0.key.distance(to: t) < $1.key.distance(to: t) }.prefix(20)
            return [.respond(DHT.Message(type: m.type, key: m.key, closerPeers: fellows.map { DHT.Peer(id: $0.peer) }), to: peers[i], inbound: inbound)]
        case .garbage:
            var junk = DHT.Message(type: m.type, key: m.key)
            junk.closerPeers = (0..<5).map { _ in DHT.Peer(id: Self.makePeer(&rng)) }  // nonexistent peers
            return [.respond(junk, to: peers[i], inbound: inbound)]
        case .returnsItself:
            return [.respond(DHT.Message(type: m.type, key: m.key, closerPeers: [DHT.Peer(id: peers[j])]), to: peers[i], inbound: inbound)]
        case .dead:
            return []
        }
    }

    mutating func run(until deadline: Instant) {
        while let top = heap.first, top.at <= deadline {
            step(pop()!)
        }
        now = max(now, deadline)
    }

    mutating func runUntilIdle(limit: Duration = .seconds(3600)) {
        let deadline = now + limit
        while let top = heap.first, top.at <= deadline {
            let s = pop()!
            // Periodic timers keep the queue alive forever; stop once only those remain.
            step(s)
        }
    }

    /// Runs until query `q` of node `n` has a result (or the time limit).
    mutating func runUntilFinished(node n: Int, query q: DHT.QueryID, limit: Duration = .seconds(600)) -> (DHT.QueryResult, DHT.QueryStats)? {
        let deadline = now + limit
        while results[n]?[q] == nil, let top = heap.first, top.at <= deadline { step(pop()!) }
        return results[n]?[q]
    }

    // MARK: Queries

    mutating func start(_ n: Int, _ op: (inout DHT.Instance, Instant) -> (DHT.QueryID, [DHT.Directive])) -> DHT.QueryID {
        let (q, out) = op(&nodes[n], now)
        apply(out, node: n)
        return q
    }

    // MARK: Topology

    /// The true `count` closest live nodes to `target` (brute force), excluding `excluding`.
    func trueClosest(to target: DHT.Key, count: Int, excluding: Int? = nil, among: (Int) -> Bool = { _ in true }) -> [PeerId] {
        var c = keys.indices.filter { $0 != excluding && among($0) }
        c.sort { keys[$0].distance(to: target) < keys[$1].distance(to: target) }
        return c.prefix(count).map { peers[$0] }
    }

    /// Fills routing tables from global knowledge as a long-running network would have them:
    /// for each node and each bucket, up to k random peers of that bucket's keyspace region
    /// (a contiguous range once keys are sorted).
    mutating func prefillRoutingTables(k: Int = 20, eligible: (Int) -> Bool = { _ in true }) {
        let order = keys.indices.filter(eligible).sorted { keys[$0] < keys[$1] }
        let sortedKeys = order.map { keys[$0] }
        func lowerBound(_ k: DHT.Key) -> Int {
            var lo = 0, hi = sortedKeys.count
            while lo < hi { let m = (lo + hi) / 2; if sortedKeys[m] < k { lo = m + 1 } else { hi = m } }
            return lo
        }
        for i in nodes.indices {
            let me = keys[i]
            for b in 0..<64 {
                // Region of bucket b: my first b bits, bit b flipped, anything after.
                let flipped = me.flipping(bit: b)
                let low = flipped.keepingPrefix(b + 1, fill: false)
                let high = flipped.keepingPrefix(b + 1, fill: true)
                let from = lowerBound(low)
                var to = lowerBound(high)
                if to < sortedKeys.count && sortedKeys[to] == high { to += 1 }
                let n = to - from
                if n > 0 {
                    var chosen: [Int]
                    if n <= k { chosen = Array(from..<to) } else {
                        var set = Set<Int>()
                        while set.count < k { set.insert(from + Int(rng.next() % UInt64(n))) }
                        chosen = set.sorted()
                    }
                    for c in chosen {
                        let j = order[c]
                        _ = nodes[i].onPeerConnected(peers[j], key: keys[j], addresses: [], now: now)
                    }
                }
                // Stop once no other node shares my first b+1 bits.
                let mineLow = me.keepingPrefix(b + 1, fill: false)
                let mineHigh = me.keepingPrefix(b + 1, fill: true)
                var mTo = lowerBound(mineHigh)
                if mTo < sortedKeys.count && sortedKeys[mTo] == mineHigh { mTo += 1 }
                if mTo - lowerBound(mineLow) <= 1 { break }
            }
        }
    }
}

extension DHT.Key {
    /// Keeps the first `n` bits; the rest all zero (or all one with `fill`).
    func keepingPrefix(_ n: Int, fill: Bool) -> DHT.Key {
        var w = [w0, w1, w2, w3]
        for i in 0..<4 {
            let keep = min(64, max(0, n - 64 * i))
            if keep == 64 { continue }
            let mask: UInt64 = keep == 0 ? 0 : ~UInt64(0) << UInt64(64 - keep)
            w[i] = fill ? (w[i] & mask) | ~mask : w[i] & mask
        }
        return DHT.Key(w0: w[0], w1: w[1], w2: w[2], w3: w[3])
    }
}
