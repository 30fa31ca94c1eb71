import LatticaWire

/// Back-pressure from a connection's socket to its streams (the send budget).
extension Swarm {
    /// Stream data is offered to a connection only while its socket holds (queued, not yet taken
    /// by the kernel) less than this; streams beyond it keep their bytes (`SwarmStream.send`'s
    /// backlog, a raw stream's sender) and are told `onWritable` when the socket drains. The
    /// windows peers grant (up to 16 MiB per stream, many streams) are no bound on the socket's
    /// queue: without this, a reader that fell behind on one 100 MB answer filled the queue past
    /// `TCPSettings.maxQueuedBytes` (an 8 MiB window update on 8 MiB still queued) and the
    /// connection was closed as if the peer had stopped reading. Far under that hard bound, so
    /// that control frames and yamux's own queue still fit.
    static let sendBudget = 4 << 20

    /// Bytes stream data may add to `c`'s output now.
    func sendRoom(_ c: Conn) -> Int {
        guard !c.isRelayed else { return .max }
        return max(0, Self.sendBudget - c.transport.queuedBytes - c.out.count)
    }

    /// A stream of `c` stopped at the send budget. A socket under its high watermark reports no
    /// drain (it is not full: the budget was reached by this turn's output, or one write was
    /// larger than the budget): the stalled streams are then retried after this loop turn.
    func sendStalled(_ c: Conn, _ sid: Connection.StreamID) {
        if !c.sendStalled.contains(sid) { c.sendStalled.append(sid) }
        guard c.transport.isWritable, !c.drainCheckQueued else { return }
        c.drainCheckQueued = true
        later { [weak self, weak c] in
            guard let self, let c, self.conns[c.id] != nil else { return }
            c.drainCheckQueued = false
            self.socketDrained(c)
        }
    }

    /// The socket drained: the streams that stopped at the send budget go on.
    /// Only the streams stalled before the call go on (one that stalls again waits for the next
    /// drain), as long as there is room; the rest keep their place.
    func socketDrained(_ c: Conn) {
        var waiting = c.sendStalled[...]
        c.sendStalled = []
        while let sid = waiting.first, conns[c.id] != nil, sendRoom(c) > 0 {
            waiting = waiting.dropFirst()
            streamWritable(c, sid)
        }
        c.sendStalled = Array(waiting) + c.sendStalled.filter { !waiting.contains($0) }
        flush(c)
    }
}
