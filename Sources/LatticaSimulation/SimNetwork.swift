public import LatticaCore

/// A deterministic simulated network over a virtual clock, generic over the message type.
///
/// It decides when (and whether) each message arrives: per-link latency, jitter, loss, bandwidth,
/// FIFO order, partitions and crashed nodes, and it keeps per-node timers. It knows nothing about
/// what nodes do: `Simulation` drives `SimProcess` adapters with it, and an external driver (e.g. a
/// round-based learning run) can use it directly:
///
/// ```swift
/// var net = SimNetwork<Msg>(seed: 7, nodes: 64)
/// net.send(.hello, from: SimNodeID(0), to: SimNodeID(1), bytes: 100)
/// net.run(until: net.now + .seconds(1)) { net, event in
///     if case .message(let m, let from, let to) = event { ... net.send(...) ... }
/// }
/// ```
///
/// All randomness comes from the one seed, forked per purpose (loss, jitter), so a run replays bit
/// for bit. Every delivered event is folded into `digest`.
public struct SimNetwork<Message> {
    /// What the network hands to its driver, in virtual-time order.
    public enum Event {
        case message(Message, from: SimNodeID, to: SimNodeID)
        case timer(UInt64, node: SimNodeID)
        /// The node (re)started: it is up and should run its start logic.
        case started(SimNodeID)
        /// The node crashed: it receives nothing and its timers are gone.
        case crashed(SimNodeID)
        /// A driver-scheduled wake-up (`schedule(wakeup:at:)`).
        case wakeup(UInt64)
    }

    @usableFromInline struct Flight {
        @usableFromInline var from: Int32
        @usableFromInline var to: Int32
        @usableFromInline var incarnation: UInt32
        @usableFromInline var bytes: Int
        @usableFromInline var fingerprint: UInt64
        @usableFromInline var message: Message

        @inlinable init(from: Int32, to: Int32, incarnation: UInt32, bytes: Int, fingerprint: UInt64, message: Message) {
            self.from = from; self.to = to; self.incarnation = incarnation
            self.bytes = bytes; self.fingerprint = fingerprint; self.message = message
        }
    }

    @usableFromInline enum Pending {
        case flight(Flight)
        case timer(node: Int32, id: UInt64, token: UInt64)
        case start(Int32)
        case boot(Int32, incarnation: UInt32)
        case crash(Int32)
        case wakeup(UInt64)
    }

    @usableFromInline var clock: VirtualClock<Pending>

    /// The link model used for every directed link without an override (`setLink`).
    public var defaultLink: LinkModel
    @usableFromInline var linkOverrides: [UInt64: LinkModel] = [:]
    @usableFromInline var linkState = LinkTable()

    @usableFromInline var up: [Bool] = []
    @usableFromInline var accessLatency: [Int64] = []
    @usableFromInline var incarnations: [UInt32] = []
    @usableFromInline var sides: [Int32] = []
    @usableFromInline var timers: [[UInt64: UInt64]] = []
    @usableFromInline var blockedLinks: Set<UInt64> = []
    @usableFromInline var partitioned = false
    @usableFromInline var nextTimerToken: UInt64 = 0
    /// Timer events in the queue that will not fire (cancelled, replaced, or their node crashed).
    @usableFromInline var staleTimers = 0

    @usableFromInline var lossRNG: SeededRandom
    @usableFromInline var jitterRNG: SeededRandom
    /// A generator for the driver's own choices (e.g. churn schedules), forked from the seed.
    public var rng: SeededRandom

    @usableFromInline var _counters = SimCounters()
    @usableFromInline var _digest: UInt64
    /// What the network counted so far.
    @inlinable public var counters: SimCounters { _counters }
    /// Running digest of every delivered message, fired timer, start and crash, with its time.
    @inlinable public var digest: UInt64 { _digest }
    /// Called for every send, delivery, drop, timer, start and crash. Leave `nil` for speed.
    public var trace: ((Instant, SimTraceEvent<Message>) -> Void)?

    public init(seed: UInt64, nodes: Int = 0, link: LinkModel = LinkModel(), start: Instant = .zero) {
        var root = SeededRandom(seed: seed)
        lossRNG = root.fork()
        jitterRNG = root.fork()
        rng = root.fork()
        _digest = SimDigest.combine(0x5EED, seed)
        defaultLink = link
        clock = VirtualClock(start: start)
        for _ in 0..<nodes { addNode() }
    }

    // MARK: Time

    @inlinable public var now: Instant { clock.now }
    /// Events (messages, timers, churn, wake-ups) scheduled and not yet taken.
    @inlinable public var pendingEventCount: Int { clock.pendingCount }
    @inlinable public var isIdle: Bool { clock.isIdle }
    @inlinable public var nextEventTime: Instant? { clock.nextEventTime }

    /// Schedules a `.wakeup(token)` event for the driver at `time`.
    public mutating func schedule(wakeup token: UInt64, at time: Instant) {
        clock.schedule(.wakeup(token), at: time)
    }

    // MARK: Nodes

    public var nodeCount: Int { up.count }
    public var nodeIDs: [SimNodeID] { (0..<up.count).map { SimNodeID($0) } }

    /// Adds a node, up at once (it gets no `.started` event) unless `up` is false (then bring it up
    /// with `scheduleStart(_:at:)`).
    @discardableResult
    public mutating func addNode(up isUp: Bool = true) -> SimNodeID {
        let id = up.count
        precondition(id < Int(Int32.max), "too many nodes")
        up.append(isUp)
        accessLatency.append(0)
        incarnations.append(0)
        sides.append(0)
        timers.append([:])
        return SimNodeID(id)
    }

    public func isUp(_ node: SimNodeID) -> Bool { up[node.raw] }
    /// How many times the node has crashed.
    public func incarnation(of node: SimNodeID) -> UInt32 { incarnations[node.raw] }
    public var upCount: Int { up.reduce(0) { $0 + ($1 ? 1 : 0) } }

    // MARK: Sending

    /// Sends `message`; decides now whether it is dropped and when it arrives.
    /// `fingerprint` goes into the digest at delivery (0 when the message does not matter).
    @inlinable
    public mutating func send(_ message: Message, from: SimNodeID, to: SimNodeID, bytes: Int = 0, fingerprint: UInt64 = 0) {
        let f = from.raw, t = to.raw
        precondition(f >= 0 && f < up.count && t >= 0 && t < up.count, "unknown node")
        _counters.sent += 1
        _counters.bytesSent += bytes
        if !up[f] || !up[t] { return drop(message, f, t, .crash) }
        if !canReach(f, t) { return drop(message, f, t, .partition) }
        let key = Self.linkKey(f, t)
        let link = linkOverrides.isEmpty ? defaultLink : (linkOverrides[key] ?? defaultLink)
        if link.loss > 0 && lossRNG.nextDouble() < link.loss { return drop(message, f, t, .loss) }

        let nowNs = clock.now.nanoseconds
        var arrival = nowNs
        let jitterNs = link.jitterNanoseconds
        let stateful = link.bytesPerSecond != nil || (jitterNs > 0 && link.preservesOrder)
        var state = (busyUntil: nowNs, lastArrival: nowNs)
        if stateful { state = linkState.state(key, now: nowNs) }
        if let bps = link.bytesPerSecond {
            arrival = state.busyUntil &+ Self.transmissionNanoseconds(bytes: bytes, bytesPerSecond: bps)
            state.busyUntil = arrival
        }
        arrival &+= link.latencyNanoseconds &+ accessLatency[f] &+ accessLatency[t]
        if jitterNs > 0 {
            arrival &+= Int64(truncatingIfNeeded: jitterRNG.next().multipliedFullWidth(by: UInt64(jitterNs) &+ 1).high)
        }
        if link.preservesOrder && stateful {
            arrival = Swift.max(arrival, state.lastArrival)
            state.lastArrival = arrival
        }
        if stateful { linkState.store(key, busyUntil: state.busyUntil, lastArrival: state.lastArrival, now: nowNs) }
        let flight = Flight(
            from: Int32(truncatingIfNeeded: f), to: Int32(truncatingIfNeeded: t), incarnation: incarnations[t],
            bytes: bytes, fingerprint: fingerprint, message: message)
        clock.schedule(.flight(flight), at: Instant(nanoseconds: arrival))
        if let trace { trace(now, .sent(message, from: from, to: to, bytes: bytes, arrival: Instant(nanoseconds: arrival))) }
    }

    /// `ceil(bytes * 1e9 / bytesPerSecond)` nanoseconds (saturating).
    @inlinable
    public static func transmissionNanoseconds(bytes: Int, bytesPerSecond: Int) -> Int64 {
        precondition(bytesPerSecond > 0, "bandwidth must be positive")
        guard bytes > 0 else { return 0 }
        let (hi, lo) = UInt64(bytes).multipliedFullWidth(by: 1_000_000_000)
        let d = UInt64(bytesPerSecond)
        if hi >= d { return .max }
        let (q, r) = d.dividingFullWidth((hi, lo))
        let ns = r > 0 ? q + 1 : q
        return ns > UInt64(Int64.max) ? .max : Int64(ns)
    }

    @inlinable
    mutating func drop(_ message: Message, _ f: Int, _ t: Int, _ reason: SimDropReason) {
        switch reason {
        case .loss: _counters.droppedByLoss += 1
        case .partition: _counters.droppedByPartition += 1
        case .crash: _counters.droppedByCrash += 1
        }
        if let trace { trace(now, .dropped(message, from: SimNodeID(f), to: SimNodeID(t), reason: reason)) }
    }

    @inlinable @inline(__always)
    static func linkKey(_ f: Int, _ t: Int) -> UInt64 { UInt64(UInt32(truncatingIfNeeded: f)) << 32 | UInt64(UInt32(truncatingIfNeeded: t)) }

    // MARK: Timers

    /// Arms timer `id` of `node` to fire at `time`, replacing an armed timer with the same id.
    /// Ignored when the node is down.
    @inlinable
    public mutating func setTimer(_ id: UInt64, for node: SimNodeID, at time: Instant) {
        let n = node.raw
        guard up[n] else { return }
        let token = nextTimerToken
        nextTimerToken &+= 1
        if timers[n].updateValue(token, forKey: id) != nil { staleTimers += 1 }
        clock.schedule(.timer(node: Int32(truncatingIfNeeded: n), id: id, token: token), at: time)
        compactTimersIfNeeded()
    }

    /// Disarms timer `id` of `node` (no-op when not armed).
    @inlinable
    public mutating func cancelTimer(_ id: UInt64, for node: SimNodeID) {
        if timers[node.raw].removeValue(forKey: id) != nil {
            staleTimers += 1
            compactTimersIfNeeded()
        }
    }

    /// Protocols that arm a timeout per request and cancel it on the reply leave a stale event per
    /// request; when those are most of the queue, sweep them out so the heap stays small.
    @inlinable
    mutating func compactTimersIfNeeded() {
        guard staleTimers > 4096 && staleTimers * 2 > clock.pendingCount else { return }
        let armed = timers
        clock.removeAll { pending in
            if case .timer(let node, let id, let token) = pending { return armed[Int(node)][id] != token }
            return false
        }
        staleTimers = 0
    }

    public func isTimerArmed(_ id: UInt64, for node: SimNodeID) -> Bool { timers[node.raw][id] != nil }
    public func armedTimerCount(of node: SimNodeID) -> Int { timers[node.raw].count }

    // MARK: Driving

    /// Takes the next event due at or before `limit`, handling drops and stale timers internally.
    /// Returns nil when nothing is due by `limit` (then `now` is the time of the last event taken).
    @inlinable
    public mutating func nextEvent(through limit: Instant = Instant(nanoseconds: .max)) -> Event? {
        while let (time, pending) = clock.popNext(through: limit) {
            switch pending {
            case .flight(let fl):
                let t = Int(fl.to), f = Int(fl.from)
                if !up[t] || incarnations[t] != fl.incarnation { drop(fl.message, f, t, .crash); continue }
                if !canReach(f, t) { drop(fl.message, f, t, .partition); continue }
                _counters.delivered += 1
                _counters.bytesDelivered += fl.bytes
                var d = SimDigest.combine(_digest, UInt64(bitPattern: time.nanoseconds))
                d = SimDigest.combine(d, UInt64(f) << 32 | UInt64(t))
                _digest = SimDigest.combine(d, fl.fingerprint)
                if let trace { trace(time, .delivered(fl.message, from: SimNodeID(f), to: SimNodeID(t))) }
                return .message(fl.message, from: SimNodeID(f), to: SimNodeID(t))
            case .timer(let node, let id, let token):
                let n = Int(node)
                guard up[n], timers[n][id] == token else {
                    staleTimers -= 1
                    continue
                }
                timers[n].removeValue(forKey: id)
                _counters.timersFired += 1
                var d = SimDigest.combine(_digest, UInt64(bitPattern: time.nanoseconds) ^ 0x7153)
                d = SimDigest.combine(d, UInt64(n))
                _digest = SimDigest.combine(d, id)
                if let trace { trace(time, .timerFired(id, node: SimNodeID(n))) }
                return .timer(id, node: SimNodeID(n))
            case .start(let node):
                let n = Int(node)
                guard !up[n] else { continue }
                up[n] = true
                _counters.starts += 1
                _digest = SimDigest.combine(SimDigest.combine(_digest, UInt64(bitPattern: time.nanoseconds) ^ 0x57A7), UInt64(n))
                if let trace { trace(time, .started(SimNodeID(n))) }
                return .started(SimNodeID(n))
            case .boot(let node, let inc):
                let n = Int(node)
                guard up[n], incarnations[n] == inc else { continue }
                _counters.starts += 1
                _digest = SimDigest.combine(SimDigest.combine(_digest, UInt64(bitPattern: time.nanoseconds) ^ 0x57A7), UInt64(n))
                if let trace { trace(time, .started(SimNodeID(n))) }
                return .started(SimNodeID(n))
            case .crash(let node):
                let n = Int(node)
                guard up[n] else { continue }
                crashNow(n)
                return .crashed(SimNodeID(n))
            case .wakeup(let token):
                return .wakeup(token)
            }
        }
        return nil
    }

    /// Handles every event due at or before `time` (including those the handler causes), then moves
    /// `now` to `time`.
    @inlinable
    public mutating func run<E: Error>(until time: Instant, _ handle: (inout Self, Event) throws(E) -> Void) throws(E) {
        while let e = nextEvent(through: time) { try handle(&self, e) }
        clock.moveNow(to: time)
    }

    /// Handles events until none are left or `limit` events were handled. Returns how many were.
    @inlinable @discardableResult
    public mutating func runUntilIdle<E: Error>(limit: Int = .max, _ handle: (inout Self, Event) throws(E) -> Void) throws(E) -> Int {
        var n = 0
        while n < limit, let e = nextEvent() {
            try handle(&self, e)
            n += 1
        }
        return n
    }

    /// Moves `now` forward to `time` without taking events (they stay due at their own times).
    public mutating func moveNow(to time: Instant) { clock.moveNow(to: time) }
}
