public import LatticaCore

/// How one directed link (or, as `SimNetwork.defaultLink`, every link) behaves.
///
/// A message of `b` bytes sent at `t` on a link with bandwidth `B` starts transmitting when the link
/// is free (`max(t, busyUntil)`), occupies it for `ceil(b * 1e9 / B)` ns, then travels for
/// `latency + U[0, jitter]`. With `preservesOrder` (the default, like a TCP connection) a message
/// never arrives before an earlier message on the same link.
public struct LinkModel: Hashable, Sendable {
    /// One-way propagation delay.
    public var latency: Duration {
        get { .nanoseconds(latencyNanoseconds) }
        set { latencyNanoseconds = Swift.max(0, newValue.nanosecondsClamped) }
    }
    /// Extra delay drawn uniformly from [0, jitter] per message.
    public var jitter: Duration {
        get { .nanoseconds(jitterNanoseconds) }
        set { jitterNanoseconds = Swift.max(0, newValue.nanosecondsClamped) }
    }
    @usableFromInline var latencyNanoseconds: Int64 = 0
    @usableFromInline var jitterNanoseconds: Int64 = 0
    /// Probability in [0, 1] that a message is lost (decided at send time).
    public var loss: Double
    /// Serialization rate in bytes per second; `nil` = unlimited (no serialization delay).
    public var bytesPerSecond: Int?
    /// FIFO per directed link: jitter never reorders messages on one link.
    public var preservesOrder: Bool

    public init(
        latency: Duration = .milliseconds(10),
        jitter: Duration = .zero,
        loss: Double = 0,
        bytesPerSecond: Int? = nil,
        preservesOrder: Bool = true
    ) {
        self.latencyNanoseconds = Swift.max(0, latency.nanosecondsClamped)
        self.jitterNanoseconds = Swift.max(0, jitter.nanosecondsClamped)
        self.loss = loss
        self.bytesPerSecond = bytesPerSecond
        self.preservesOrder = preservesOrder
    }

    /// Zero latency, no loss: messages arrive at the time they were sent (after earlier events).
    public static let instant = LinkModel(latency: .zero)
}

/// Why a message did not arrive.
public enum SimDropReason: Hashable, Sendable {
    /// Lost by the link's loss probability.
    case loss
    /// Sender and receiver are on different sides of a partition, or the link is blocked.
    case partition
    /// The receiver (or sender) is down, or the receiver crashed while the message was in flight.
    case crash
}

/// What the network counted. All counters only grow.
public struct SimCounters: Hashable, Sendable, CustomStringConvertible {
    public var sent = 0
    public var delivered = 0
    public var droppedByLoss = 0
    public var droppedByPartition = 0
    public var droppedByCrash = 0
    public var bytesSent = 0
    public var bytesDelivered = 0
    public var timersFired = 0
    /// Timers that were pending when their node crashed.
    public var timersDroppedByCrash = 0
    public var crashes = 0
    public var starts = 0

    public init() {}

    public var dropped: Int { droppedByLoss + droppedByPartition + droppedByCrash }
    /// Messages still travelling (sent, neither delivered nor dropped yet).
    public var inFlight: Int { sent - delivered - dropped }

    public var description: String {
        "sent=\(sent) delivered=\(delivered) lost=\(droppedByLoss) partitioned=\(droppedByPartition) "
            + "crashed=\(droppedByCrash) bytes=\(bytesSent)/\(bytesDelivered) timers=\(timersFired) "
            + "crashes=\(crashes) starts=\(starts)"
    }
}

/// One observable step of a run, handed to `SimNetwork.trace` with its virtual time.
public enum SimTraceEvent<Message> {
    case sent(Message, from: SimNodeID, to: SimNodeID, bytes: Int, arrival: Instant)
    case delivered(Message, from: SimNodeID, to: SimNodeID)
    case dropped(Message, from: SimNodeID, to: SimNodeID, reason: SimDropReason)
    case timerFired(UInt64, node: SimNodeID)
    case crashed(SimNodeID)
    case started(SimNodeID)
}
