import LatticaCore
import LatticaUV
import LatticaWire
import Metrics

/// One open stream as the handler that owns it sees it. The swarm owns connections and streams;
/// the state of a stream's protocol lives in its `handler`, which belongs to the service that
/// opened or accepted the stream. Loop thread only.
final class SwarmStream {
    weak var swarm: Swarm?
    let conn: Conn
    let id: Connection.StreamID
    let peer: PeerId
    let protocolID: String
    let isInbound: Bool
    var handler: (any StreamHandler)?
    /// What `send` could not write yet (beyond the peer's window and the send bound), written as
    /// the window opens; then our side closes if `send` asked for it. At most one message.
    private var backlog: ArraySlice<UInt8> = []
    private var closeAfterBacklog = false

    init(swarm: Swarm, conn: Conn, id: Connection.StreamID, peer: PeerId, protocolID: String, isInbound: Bool) {
        self.swarm = swarm; self.conn = conn; self.id = id; self.peer = peer; self.protocolID = protocolID; self.isInbound = isInbound
    }

    /// The handler tells the muxer when it is done with received bytes (`consume`), so that the
    /// peer's window opens only as fast as the handler passes them on (a relay's pipe).
    var consumesManually = false

    /// With `consumesManually`: `count` received bytes are passed on; the peer may send more.
    func consume(_ count: Int) {
        guard let swarm, isOpen, count > 0 else { return }
        swarm.apply(conn, conn.instance.consumed(stream: id, count: count, now: swarm.loop.now))
    }

    /// The stream still exists on its connection.
    var isOpen: Bool { conn.streams[id] === self }
    /// The connection's remote address (the address the peer is observed at, for identify).
    var remoteAddr: Multiaddr? { conn.remoteAddr }

    /// Writes what the stream accepts now (the peer's window, the send bound and the socket's
    /// send budget); returns how many bytes that was. When fewer than offered, wait for `onWritable`.
    @discardableResult
    func write(_ bytes: some Collection<UInt8>) -> Int {
        guard let swarm, isOpen else { return 0 }
        swarm.loop.assertInLoop()
        let room = swarm.sendRoom(conn)
        // The budget limits this write, or this write uses it up: wait for the socket to drain.
        if room <= bytes.count { stallOnSocket() }
        guard room > 0 else { return 0 }
        let (n, ds) = conn.instance.write(stream: id, bytes: bytes.prefix(room), now: swarm.loop.now)
        swarm.apply(conn, ds)
        return n
    }

    /// Waits for the socket to drain (`Swarm.socketDrained` calls `onWritable`).
    private func stallOnSocket() { swarm?.sendStalled(conn, id) }

    /// Writes a whole message and optionally closes our side. What the window does not take now
    /// waits here and goes out as the peer reads (`flushBacklog`), so no byte is lost.
    func send(_ bytes: [UInt8], close: Bool) {
        guard isOpen else { return }
        if backlog.isEmpty {
            // Offer at most what the stream takes now: the stack copies what it is given.
            let n = write(bytes.prefix(max(writableBytes, 1)))
            if n < bytes.count { backlog = bytes[n...] }
        } else {
            backlog.append(contentsOf: bytes)
        }
        if close {
            if backlog.isEmpty { closeWrite() } else { closeAfterBacklog = true }
        }
    }

    /// The window opened: writes what `send` left. Returns true when nothing is left.
    func flushBacklog() -> Bool {
        guard !backlog.isEmpty else { return true }
        let n = write(backlog.prefix(max(writableBytes, 1)))  // not the whole backlog: it would be copied per call
        backlog = backlog.dropFirst(n)
        guard backlog.isEmpty else { return false }
        backlog = []
        if closeAfterBacklog { closeAfterBacklog = false; closeWrite() }
        return true
    }

    /// Bytes a `write` sends at once (the peer's window minus what is queued, at most the socket's
    /// send budget; at 0 because of the socket, `onWritable` follows once it drained).
    var writableBytes: Int {
        guard let swarm, isOpen else { return 0 }
        let window = conn.instance.writableBytes(id), room = swarm.sendRoom(conn)
        // At 0 because of the budget: the muxer will not report `.writable` for it. (A write of
        // exactly `room` bytes registers itself.)
        if room == 0 { stallOnSocket() }
        return min(window, room)
    }

    func closeWrite() {
        guard let swarm, isOpen else { return }
        swarm.apply(conn, conn.instance.closeWrite(stream: id, now: swarm.loop.now))
    }

    func reset() {
        guard let swarm, isOpen else { return }
        swarm.apply(conn, conn.instance.reset(stream: id, now: swarm.loop.now))
    }
}

/// The per-stream state of a protocol: gets the stream's events. Loop thread only.
protocol StreamHandler: AnyObject {
    func onData(_ s: SwarmStream, _ bytes: ArraySlice<UInt8>)
    /// The peer closed its side (we may still write).
    func onFinished(_ s: SwarmStream)
    /// The stream is gone (called once): `error` nil when it closed cleanly both ways.
    func onClosed(_ s: SwarmStream, error: String?)
    func onWritable(_ s: SwarmStream)
}

extension StreamHandler {
    func onFinished(_ s: SwarmStream) {}
    func onWritable(_ s: SwarmStream) {}
}

/// A handler that waits for an answer until a deadline; the swarm's once-a-second sweep fails it.
protocol DeadlineHandler: StreamHandler {
    var deadline: Instant? { get set }
    func timedOut(_ s: SwarmStream)
}

/// Accepts an inbound stream of a registered protocol and returns its handler; nil refuses it.
typealias InboundStreamFactory = (SwarmStream) -> (any StreamHandler)?

extension Swarm {
    // MARK: registration

    /// Routes inbound streams of `proto` to `factory` (one registration per protocol id).
    func handle(_ proto: String, _ factory: @escaping InboundStreamFactory) {
        loop.assertInLoop()
        precondition(inbound[proto] == nil, "protocol \(proto) registered twice")
        inbound[proto] = factory
    }

    /// Advertises `proto` in identify and multistream although the connection stack answers it
    /// itself (ping is echoed inside `Connection.Instance`).
    func advertise(_ proto: String) { builtIn.insert(proto) }

    // MARK: opening streams

    /// Opens an outbound stream for `proto` owned by `handler`; nil when not connected or when the
    /// muxer refuses a new stream right now (stream limit, ACK backlog).
    func openStream(_ peer: PeerId, _ proto: String, handler: any StreamHandler) -> SwarmStream? {
        guard let c = connection(to: peer), c.established, !c.goingAway else { return nil }
        return openStream(on: c, proto, handler: handler)
    }

    func openStream(on c: Conn, _ proto: String, handler: any StreamHandler) -> SwarmStream? {
        loop.assertInLoop()
        guard let peer = c.peer, let (sid, ds) = c.instance.openStream(protocols: [proto], now: loop.now) else { return nil }
        let s = SwarmStream(swarm: self, conn: c, id: sid, peer: peer, protocolID: proto, isInbound: false)
        s.handler = handler
        c.streams[sid] = s
        apply(c, ds)
        return s.isOpen ? s : nil
    }

    /// Like `openStream`, but waits in a bounded per-connection queue while the muxer is at its
    /// stream limit. `then(nil)` (failure) never runs before this call returns, so a caller that
    /// retries on failure cannot recurse.
    func openStreamQueued(_ peer: PeerId, _ proto: String, handler: any StreamHandler, then: @escaping (SwarmStream?) -> Void) {
        loop.assertInLoop()
        guard let c = connection(to: peer), c.established, !c.goingAway else {
            later { then(nil) }
            return
        }
        if c.pendingOpens.isEmpty, let s = openStream(on: c, proto, handler: handler) {
            then(s)  // success runs at once (it only writes); failures are deferred below
            return
        }
        guard c.pendingOpens.count < maxPendingOpens else {
            later { then(nil) }
            return
        }
        c.pendingOpens.append(PendingOpen(proto: proto, handler: handler, then: then))
    }

    /// Opens queued streams while the muxer accepts them (after a stream ended or opened).
    func drainPendingOpens(_ c: Conn) {
        while let p = c.pendingOpens.first, conns[c.id] != nil {
            guard let s = openStream(on: c, p.proto, handler: p.handler) else { return }
            c.pendingOpens.popFirst()
            p.then(s)
        }
    }

    /// Runs `f` on the loop thread after the current callback (breaks synchronous re-entrance).
    func later(_ f: @escaping () -> Void) {
        let box = LoopBound(f, loop: loop)
        loop.execute { box.value() }
    }

    func write(_ c: Conn, _ sid: Connection.StreamID, _ bytes: [UInt8], close: Bool) {
        let (_, ds) = c.instance.write(stream: sid, bytes: bytes, now: loop.now)
        apply(c, ds)
        if close { apply(c, c.instance.closeWrite(stream: sid, now: loop.now)) }
    }

    // MARK: deadlines

    /// Starts the once-a-second sweep that fails overdue requests, if it is not running.
    func ensureDeadlineSweep() {
        guard deadlineSweep == nil else { return }
        deadlineSweep = loop.scheduleTimer(after: .seconds(1), repeating: .seconds(1)) { [weak self] _ in
            self?.sweepDeadlines()
        }
    }

    /// Fails and resets every stream whose deadline passed; stops the sweep when none waits.
    func sweepDeadlines() {
        let now = loop.now
        var waiting = 0
        for c in Array(conns.values) {
            for s in Array(c.streams.values) {
                guard let h = s.handler as? any DeadlineHandler, let d = h.deadline else { continue }
                if d <= now {
                    h.deadline = nil
                    h.timedOut(s)
                    s.reset()
                } else {
                    waiting += 1
                }
            }
        }
        if waiting == 0 {
            deadlineSweep?.cancel()
            deadlineSweep = nil
        }
    }

    // MARK: stream events from the connection

    func streamOpened(_ c: Conn, _ sid: Connection.StreamID, _ proto: String, inbound isInbound: Bool) {
        guard isInbound else {  // outbound streams were registered when opened; the ACK may free a slot
            if !c.pendingOpens.isEmpty { drainPendingOpens(c) }
            return
        }
        guard let peer = c.peer else { return }
        let s = SwarmStream(swarm: self, conn: c, id: sid, peer: peer, protocolID: proto, isInbound: true)
        c.streams[sid] = s
        guard let factory = inbound[proto], let h = factory(s) else {
            Counter(label: "lattica_streams_refused_total").increment()
            s.reset()
            return
        }
        if s.isOpen { s.handler = h }
    }

    func streamData(_ c: Conn, _ sid: Connection.StreamID, _ bytes: ArraySlice<UInt8>) {
        guard let s = c.streams[sid] else {
            apply(c, c.instance.consumed(stream: sid, count: bytes.count, now: loop.now))
            return
        }
        defer { if !s.consumesManually { apply(c, c.instance.consumed(stream: sid, count: bytes.count, now: loop.now)) } }
        c.lastActivity = loop.now
        s.handler?.onData(s, bytes)
    }

    func streamFinished(_ c: Conn, _ sid: Connection.StreamID) {
        guard let s = c.streams[sid] else { return }
        s.handler?.onFinished(s)
    }

    func streamGone(_ c: Conn, _ sid: Connection.StreamID, error: String?) {
        guard let s = c.streams.removeValue(forKey: sid) else { return }
        if let i = c.sendStalled.firstIndex(of: sid) { c.sendStalled.remove(at: i) }
        defer { if !c.pendingOpens.isEmpty { drainPendingOpens(c) } }
        let h = s.handler
        s.handler = nil
        h?.onClosed(s, error: error)
        if c.retired, c.streams.isEmpty { apply(c, c.instance.close(now: loop.now)) }
    }

    func streamWritable(_ c: Conn, _ sid: Connection.StreamID) {
        guard let s = c.streams[sid], s.flushBacklog() else { return }
        s.handler?.onWritable(s)
    }
}

/// An outbound stream open waiting for the muxer.
struct PendingOpen {
    var proto: String
    var handler: any StreamHandler
    var then: (SwarmStream?) -> Void
}
