public import LatticaCore

/// Runs one `SimProcess` per node over a `SimNetwork`, deterministically from one seed.
///
/// ```swift
/// var sim = Simulation<Gossip>(seed: 42, link: LinkModel(latency: .milliseconds(20)))
/// for _ in 0..<200 { sim.addNode(Gossip()) }
/// sim.run(until: .zero + .seconds(30))
/// #expect(sim.counters.delivered > 0); print(sim.digest)
/// ```
public struct Simulation<P: SimProcess> {
    public typealias Message = P.Message

    /// What to do with a node's state when churn restarts it.
    public enum RestartPolicy {
        /// Keep the process as it was at the crash (like state on disk).
        case preserveState
        /// Replace it with a fresh process.
        case fresh((SimNodeID) -> P)
    }

    /// The network: links, partitions, churn, counters, digest and trace live here.
    public var network: SimNetwork<Message>
    @usableFromInline var processes: [P] = []
    @usableFromInline var rngs: [SeededRandom] = []
    @usableFromInline var replacements: [Int: P] = [:]
    @usableFromInline var actions: [((inout Simulation<P>) -> Void)?] = []
    @usableFromInline var scratch: [SimContext<Message>.Effect] = []
    @usableFromInline var nodeRNGSource: SeededRandom
    /// Applied when a crashed node restarts without an explicit replacement.
    public var restartPolicy: RestartPolicy = .preserveState
    /// Events handled so far (messages, timers, starts, crashes, actions).
    @inlinable public var eventsHandled: Int { _eventsHandled }
    @usableFromInline var _eventsHandled = 0

    public init(seed: UInt64, link: LinkModel = LinkModel(), start: Instant = .zero) {
        network = SimNetwork(seed: seed, link: link, start: start)
        nodeRNGSource = network.rng.fork()
    }

    // MARK: Nodes

    public var now: Instant { network.now }
    public var nodeCount: Int { processes.count }
    public var nodeIDs: [SimNodeID] { network.nodeIDs }
    public var counters: SimCounters { network.counters }
    public var digest: UInt64 { network.digest }

    /// Adds a node. Without `startAt` (or with a time not after now) it is up at once and its
    /// `onStart` runs now, after events already due; with a later `startAt` it is down (unreachable)
    /// until then.
    @discardableResult
    public mutating func addNode(_ process: P, startAt: Instant? = nil) -> SimNodeID {
        let late = startAt.map { $0 > now } ?? false
        let id = network.addNode(up: !late)
        processes.append(process)
        rngs.append(nodeRNGSource.fork())
        if late {
            network.scheduleStart(id, at: startAt!)
        } else {
            network.scheduleStartEvent(id, at: now)
        }
        return id
    }

    /// A node's process (also while it is down).
    public subscript(node: SimNodeID) -> P {
        get { processes[node.raw] }
        _modify { yield &processes[node.raw] }
        set { processes[node.raw] = newValue }
    }

    /// All processes, indexed by `SimNodeID.raw`.
    public var allProcesses: [P] { processes }

    public func isUp(_ node: SimNodeID) -> Bool { network.isUp(node) }

    /// Runs `body` on a node's process now, as if an event had arrived (e.g. "start a lookup"),
    /// and applies the effects it records on the context. The node must be up.
    @inlinable
    @discardableResult
    public mutating func perform<R>(on node: SimNodeID, _ body: (inout P, inout SimContext<Message>) -> R) -> R {
        precondition(network.isUp(node), "perform on a node that is down")
        var ctx = makeContext(node.raw)
        let r = body(&processes[node.raw], &ctx)
        finish(ctx, node.raw)
        return r
    }

    // MARK: Faults

    /// Crashes `node` now (see `SimNetwork.crash`).
    public mutating func crash(_ node: SimNodeID) { network.crash(node) }

    /// Restarts `node` at `time` (default now). With `process`, that becomes its new state;
    /// otherwise `restartPolicy` decides. Its `onStart` runs again.
    /// Restarting a node that is up (now) does nothing.
    public mutating func restart(_ node: SimNodeID, with process: P? = nil, at time: Instant? = nil) {
        if time == nil && network.isUp(node) { return }
        if let process { replacements[node.raw] = process }
        network.scheduleStart(node, at: time ?? now)
    }

    /// Splits the network (see `SimNetwork.partition`).
    public mutating func partition(_ groups: [[SimNodeID]]) { network.partition(groups) }
    /// Cuts `node` off from every other node.
    public mutating func isolate(_ node: SimNodeID) { network.isolate(node) }
    /// Removes every partition and link block.
    public mutating func heal() { network.heal() }

    /// Schedules every crash and restart of `schedule` (restarts follow `restartPolicy`).
    public mutating func apply(_ schedule: ChurnSchedule) { network.apply(schedule) }

    /// Runs `action` at `time`, in order with the other events (e.g. partition at t = 5 s).
    public mutating func schedule(at time: Instant, _ action: @escaping (inout Simulation<P>) -> Void) {
        network.schedule(wakeup: UInt64(actions.count), at: time)
        actions.append(action)
    }

    // MARK: Running

    /// Handles the next event, if any. Returns false when idle.
    @inlinable
    @discardableResult
    public mutating func step() -> Bool {
        guard let e = network.nextEvent() else { return false }
        handle(e)
        return true
    }

    /// Handles every event due at or before `time`, then moves the clock to `time`.
    @inlinable
    public mutating func run(until time: Instant) {
        while let e = network.nextEvent(through: time) { handle(e) }
        network.moveNow(to: time)
    }

    /// Runs for `duration` of virtual time from now.
    @inlinable
    public mutating func run(for duration: Duration) { run(until: now + duration) }

    /// Handles events until none are left or `limit` were handled. Returns true when idle.
    @inlinable
    @discardableResult
    public mutating func runUntilIdle(limit: Int = .max) -> Bool {
        var n = 0
        while n < limit, let e = network.nextEvent() {
            handle(e)
            n += 1
        }
        return network.isIdle
    }

    @inlinable
    mutating func handle(_ event: SimNetwork<Message>.Event) {
        _eventsHandled += 1
        switch event {
        case .message(let m, let from, let to):
            let n = to.raw
            var ctx = makeContext(n)
            processes[n].onMessage(m, from: from, &ctx)
            finish(ctx, n)
        case .timer(let id, let node):
            let n = node.raw
            var ctx = makeContext(n)
            processes[n].onTimer(id, &ctx)
            finish(ctx, n)
        case .started(let node):
            let n = node.raw
            if let p = replacements.removeValue(forKey: n) {
                processes[n] = p
            } else if network.incarnation(of: node) > 0, case .fresh(let make) = restartPolicy {
                processes[n] = make(node)
            }
            var ctx = makeContext(n)
            processes[n].onStart(&ctx)
            finish(ctx, n)
        case .crashed:
            break
        case .wakeup(let token):
            let i = Int(token)
            if let action = actions[i] {
                actions[i] = nil
                action(&self)
            }
        }
    }

    @inlinable
    mutating func makeContext(_ n: Int) -> SimContext<Message> {
        var effects: [SimContext<Message>.Effect] = []
        swap(&effects, &scratch)
        return SimContext(now: network.now, me: SimNodeID(n), nodeCount: processes.count, rng: rngs[n], effects: effects)
    }

    @inlinable
    mutating func finish(_ ctx: consuming SimContext<Message>, _ n: Int) {
        rngs[n] = ctx.rng
        let me = SimNodeID(n)
        for i in ctx.effects.indices {
            switch ctx.effects[i] {
            case .send(let m, let to, let bytes):
                network.send(
                    m, from: me, to: to, bytes: bytes >= 0 ? bytes : P.wireSize(of: m), fingerprint: P.fingerprint(of: m))
            case .setTimer(let id, let at):
                network.setTimer(id, for: me, at: at)
            case .cancelTimer(let id):
                network.cancelTimer(id, for: me)
            }
        }
        ctx.effects.removeAll(keepingCapacity: true)
        swap(&ctx.effects, &scratch)
    }
}
