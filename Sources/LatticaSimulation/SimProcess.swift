public import LatticaCore

/// A sans-I/O protocol instance adapted to the simulator.
///
/// The adapter translates: it calls the instance's `on…(…, now: ctx.now)` and turns the returned
/// directives into `ctx.send` / `ctx.setTimer` / `ctx.cancelTimer`. See Docs/SIMULATION.md.
public protocol SimProcess {
    associatedtype Message

    /// Called when the node starts and again after every restart.
    mutating func onStart(_ ctx: inout SimContext<Message>)
    mutating func onMessage(_ message: Message, from: SimNodeID, _ ctx: inout SimContext<Message>)
    mutating func onTimer(_ id: UInt64, _ ctx: inout SimContext<Message>)

    /// Simulated size on the wire, used for bandwidth when `send` gives no `bytes` (default 0).
    static func wireSize(of message: Message) -> Int
    /// What the digest records of a delivered message (default 0; `hashValue` for `Hashable`
    /// messages, which is stable only within one process: see `SimDigest`).
    static func fingerprint(of message: Message) -> UInt64
}

extension SimProcess {
    public mutating func onStart(_ ctx: inout SimContext<Message>) {}
    public mutating func onTimer(_ id: UInt64, _ ctx: inout SimContext<Message>) {}
    public static func wireSize(of message: Message) -> Int { 0 }
    public static func fingerprint(of message: Message) -> UInt64 { 0 }
}

extension SimProcess where Message: Hashable {
    public static func fingerprint(of message: Message) -> UInt64 { UInt64(bitPattern: Int64(message.hashValue)) }
}

/// What a process sees and does during one callback. Effects are applied in call order when the
/// callback returns.
public struct SimContext<Message> {
    /// The virtual time of the event being handled.
    public let now: Instant
    /// The node running.
    public let me: SimNodeID
    /// Number of nodes in the simulation (ids are `0..<nodeCount`).
    public let nodeCount: Int
    /// This node's generator (forked from the simulation seed; kept across callbacks and restarts).
    public var rng: SeededRandom

    @usableFromInline enum Effect {
        case send(Message, to: SimNodeID, bytes: Int)
        case setTimer(UInt64, at: Instant)
        case cancelTimer(UInt64)
    }

    @usableFromInline var effects: [Effect]

    @usableFromInline
    init(now: Instant, me: SimNodeID, nodeCount: Int, rng: SeededRandom, effects: [Effect]) {
        self.now = now
        self.me = me
        self.nodeCount = nodeCount
        self.rng = rng
        self.effects = effects
    }

    /// Sends `message` to `node`; `bytes` (for bandwidth) defaults to the process's `wireSize(of:)`.
    @inlinable
    public mutating func send(_ message: Message, to node: SimNodeID, bytes: Int? = nil) {
        effects.append(.send(message, to: node, bytes: bytes ?? -1))
    }

    /// Arms timer `id` to fire after `delay`, replacing an armed timer with the same id.
    @inlinable
    public mutating func setTimer(_ id: UInt64, after delay: Duration) {
        effects.append(.setTimer(id, at: now + delay))
    }

    /// Arms timer `id` to fire at `time` (a past time fires as soon as possible).
    @inlinable
    public mutating func setTimer(_ id: UInt64, at time: Instant) {
        effects.append(.setTimer(id, at: time))
    }

    @inlinable
    public mutating func cancelTimer(_ id: UInt64) {
        effects.append(.cancelTimer(id))
    }

    /// A uniformly random node other than `me` (requires at least two nodes).
    @inlinable
    public mutating func randomPeer() -> SimNodeID {
        precondition(nodeCount > 1, "no other node")
        var r = Int(truncatingIfNeeded: rng.next().multipliedFullWidth(by: UInt64(nodeCount - 1)).high)
        if r >= me.raw { r += 1 }
        return SimNodeID(r)
    }
}
