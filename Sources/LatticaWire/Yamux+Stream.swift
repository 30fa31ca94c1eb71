public import LatticaCore

extension Yamux {
    /// Per-stream state: flow-control windows, the send queue and the half-close flags.
    struct StreamState: Sendable {
        /// Bytes the peer still lets us send.
        var sendWindow: UInt32
        /// Bytes the peer may still send us before our next window update.
        var receiveWindow: UInt32
        /// The window we currently grant in total (auto-tuned, starts at 256 KiB).
        var maxReceiveWindow: UInt32 = Yamux.defaultCredit
        /// Delivered to the application but not yet reported `consumed`.
        var buffered: Int = 0
        var lastWindowUpdate: Instant
        /// Accepted by `write`, waiting for send window: `pending[pendingStart...]`.
        var pending: [UInt8] = []
        var pendingStart = 0
        var outbound: Bool
        /// Outbound: the peer has not yet acknowledged the stream.
        var awaitingAck: Bool
        /// Local FIN requested (sent once the queue drains) / sent.
        var finRequested = false
        var finSent = false
        var remoteFinished = false
        /// `write` had to queue bytes; emit `.writable` when the queue drains.
        var blocked = false

        var pendingCount: Int { pending.count - pendingStart }

        init(outbound: Bool, sendWindow: UInt32, now: Instant) {
            self.outbound = outbound
            self.awaitingAck = outbound
            self.sendWindow = sendWindow
            self.receiveWindow = Yamux.defaultCredit
            self.lastWindowUpdate = now
        }
    }

    /// A ring of recently closed stream ids with their closing time.
    struct ClosedStreams: Sendable {
        var order: [StreamID] = []
        var head = 0
        var closedAt: [StreamID: Instant] = [:]
        let capacity: Int

        init(capacity: Int) { self.capacity = max(1, capacity) }

        mutating func insert(_ id: StreamID, at now: Instant) {
            if closedAt[id] != nil { closedAt[id] = now; return }
            if order.count < capacity {
                order.append(id)
            } else {
                closedAt[order[head]] = nil
                order[head] = id
                head = (head + 1) % capacity
            }
            closedAt[id] = now
        }

        func closedTime(_ id: StreamID) -> Instant? { closedAt[id] }
    }
}
