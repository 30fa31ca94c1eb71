import LatticaCore
import LatticaStore
import LatticaUV
import LatticaWire
import Metrics

/// The state of one stream on a connection. Loop thread only.
final class StreamState {
    enum Kind { case identifyOut, identifyIn, identifyPushIn, pingOut, requestOut, requestIn, oneWay, raw, refused }

    let kind: Kind
    var protocolID: String
    var buffer: [UInt8] = []
    var identify = Identify.Reader()
    var ping: Ping.Instance?
    var pingRemaining = 0
    var rtts: [Duration] = []
    var pingDone: ((Result<[Duration], SwarmError>) -> Void)?
    var responseDone: ((Result<[UInt8], SwarmError>) -> Void)?
    var timer: LoopTimer?
    /// When a waiting request fails with `timeoutMessage` (checked by the swarm's sweep).
    var deadline: Instant?
    var timeoutMessage = ""
    var answered = false
    var raw: RawStream?

    init(kind: Kind, protocolID: String) { self.kind = kind; self.protocolID = protocolID }

    /// Completes whatever waits on this stream with `error` (once).
    func fail(_ error: String) {
        timer?.cancel()
        timer = nil
        deadline = nil
        pingDone?(.failure(SwarmError(error)))
        pingDone = nil
        responseDone?(.failure(SwarmError(error)))
        responseDone = nil
        let r = raw
        raw = nil
        r?.onEnd?(error)
    }
}

/// Request/response framing of our application protocols: one request and one response per
/// stream, each an unsigned varint length followed by that many bytes (Docs/WIRE.md).
enum LengthPrefixed {
    /// The message once complete; nil while incomplete; throws when malformed or over `limit`.
    static func decode(_ buffer: [UInt8], limit: Int) throws(SwarmError) -> [UInt8]? {
        let header: (value: UInt64, length: Int)?
        do { header = try Varint.decode(buffer[...]) } catch { throw SwarmError("malformed length prefix") }
        guard let (n, len) = header else { return nil }
        guard n <= UInt64(limit) else { throw SwarmError("message of \(n) bytes exceeds the limit of \(limit)") }
        guard buffer.count >= len + Int(n) else { return nil }
        guard buffer.count == len + Int(n) else { throw SwarmError("trailing bytes after the message") }
        return Array(buffer[len...])
    }

    static func encode(_ m: [UInt8]) -> [UInt8] {
        var out = Varint.encoded(UInt64(m.count))
        out += m
        return out
    }
}

extension Swarm {
    // MARK: opening streams

    /// Opens an outbound stream for `proto` on the connection to `peer`; nil when not connected or
    /// when the muxer refuses a new stream right now (stream limit, ACK backlog).
    func openStream(_ peer: PeerId, _ proto: String, kind: StreamState.Kind) -> (Conn, Connection.StreamID, StreamState)? {
        guard let c = connection(to: peer), c.established, !c.goingAway else { return nil }
        return openStream(on: c, proto, kind: kind)
    }

    func openStream(on c: Conn, _ proto: String, kind: StreamState.Kind) -> (Conn, Connection.StreamID, StreamState)? {
        guard let (sid, ds) = c.instance.openStream(protocols: [proto], now: loop.now) else { return nil }
        let s = StreamState(kind: kind, protocolID: proto)
        c.streams[sid] = s
        apply(c, ds)
        return c.streams[sid] == nil ? nil : (c, sid, s)
    }

    /// Like `openStream`, but waits in a bounded per-connection queue while the muxer is at its
    /// stream limit. `then(nil)` (failure) never runs before this call returns, so a caller that
    /// retries on failure cannot recurse.
    func openStreamQueued(_ peer: PeerId, _ proto: String, kind: StreamState.Kind,
                          then: @escaping ((Conn, Connection.StreamID, StreamState)?) -> Void) {
        guard let c = connection(to: peer), c.established, !c.goingAway else {
            later { then(nil) }
            return
        }
        if c.pendingOpens.isEmpty, let r = openStream(on: c, proto, kind: kind) {
            then(r)  // success runs at once (it only writes); failures are deferred below
            return
        }
        guard c.pendingOpens.count < maxPendingOpens else {
            later { then(nil) }
            return
        }
        c.pendingOpens.append((proto, kind, then))
    }

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
            for (sid, s) in c.streams {
                guard let d = s.deadline else { continue }
                if d <= now {
                    s.fail(s.timeoutMessage)
                    apply(c, c.instance.reset(stream: sid, now: now))
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

    /// Runs `f` on the loop thread after the current callback (breaks synchronous re-entrance).
    func later(_ f: @escaping () -> Void) {
        let box = LoopBound(f)
        loop.execute { box.value() }
    }

    /// Opens queued streams while the muxer accepts them (after a stream ended or opened).
    func drainPendingOpens(_ c: Conn) {
        while let (proto, kind, then) = c.pendingOpens.first, conns[c.id] != nil {
            guard let r = openStream(on: c, proto, kind: kind) else { return }
            c.pendingOpens.popFirst()
            then(r)
        }
    }

    func openIdentify(_ c: Conn) {
        guard let p = c.peer else { return }
        _ = openStream(p, Identify.protocolID, kind: .identifyOut)
    }

    func write(_ c: Conn, _ sid: Connection.StreamID, _ bytes: [UInt8], close: Bool) {
        let (_, ds) = c.instance.write(stream: sid, bytes: bytes, now: loop.now)
        apply(c, ds)
        if close { apply(c, c.instance.closeWrite(stream: sid, now: loop.now)) }
    }

    /// Sends `request` on a new `proto` stream to a connected peer; completes with the response.
    func request(_ peer: PeerId, _ proto: String, _ request: [UInt8], timeout: Duration = .seconds(30),
                 completion: @escaping (Result<[UInt8], SwarmError>) -> Void) {
        openStreamQueued(peer, proto, kind: .requestOut) { [weak self] opened in
            guard let self else { return }
            guard let (c, sid, s) = opened else {
                completion(.failure(SwarmError("not connected to \(peer), or too many streams queued"))); return
            }
            s.responseDone = completion
            // No timer per request: one sweep per swarm fails the overdue ones (see sweepDeadlines).
            s.deadline = self.loop.now + timeout
            s.timeoutMessage = "request timed out after \(timeout)"
            self.ensureDeadlineSweep()
            self.write(c, sid, LengthPrefixed.encode(request), close: true)
        }
    }

    /// Sends one framed message on a new stream and closes it; no response is read.
    func sendOneWay(_ peer: PeerId, _ proto: String, _ message: [UInt8], completion: @escaping (Bool) -> Void) {
        openStreamQueued(peer, proto, kind: .oneWay) { [weak self] opened in
            guard let self, let (c, sid, _) = opened else { completion(false); return }
            self.write(c, sid, LengthPrefixed.encode(message), close: true)
            completion(true)
        }
    }

    /// Pings `peer` `count` times on one stream; completes with the round-trip times.
    func ping(_ peer: PeerId, count: Int, completion: @escaping (Result<[Duration], SwarmError>) -> Void) {
        openStreamQueued(peer, Ping.protocolID, kind: .pingOut) { [weak self] opened in
            guard let self else { return }
            guard let (c, sid, s) = opened else { completion(.failure(SwarmError("not connected to \(peer)"))); return }
            s.ping = Ping.Instance(rng: self.rng.fork())
            s.pingRemaining = count
            s.pingDone = completion
            s.timer = self.loop.scheduleTimer(after: .seconds(10) * max(1, count)) { [weak self, weak c, weak s] _ in
                guard let self, let c, let s else { return }
                s.fail("ping timed out")
                self.apply(c, c.instance.reset(stream: sid, now: self.loop.now))
            }
            self.sendNextPing(c, sid, s)
        }
    }

    private func sendNextPing(_ c: Conn, _ sid: Connection.StreamID, _ s: StreamState) {
        guard s.pingRemaining > 0, let payload = s.ping?.ping(now: loop.now) else { return }
        s.pingRemaining -= 1
        write(c, sid, payload, close: false)
    }

    // MARK: stream events from the connection

    func streamOpened(_ c: Conn, _ sid: Connection.StreamID, _ proto: String, inbound: Bool) {
        guard inbound else {  // outbound streams were registered when opened; the ACK may free a slot
            if !c.pendingOpens.isEmpty { drainPendingOpens(c) }
            return
        }
        guard let peer = c.peer else { return }
        switch proto {
        case Identify.protocolID:
            c.streams[sid] = StreamState(kind: .identifyIn, protocolID: proto)
            write(c, sid, ourIdentify(for: c).framed(), close: true)
        case Identify.pushProtocolID:
            c.streams[sid] = StreamState(kind: .identifyPushIn, protocolID: proto)
        case _ where requestHandlers[proto] != nil:
            c.streams[sid] = StreamState(kind: .requestIn, protocolID: proto)
        case _ where rawHandlers[proto] != nil:
            let s = StreamState(kind: .raw, protocolID: proto)
            let r = RawStream(swarm: self, conn: c, id: sid, peer: peer, protocolID: proto)
            s.raw = r
            c.streams[sid] = s
            rawHandlers[proto]?(r)
        default:
            _ = peer
            c.streams[sid] = StreamState(kind: .refused, protocolID: proto)
            apply(c, c.instance.reset(stream: sid, now: loop.now))
        }
    }

    func streamData(_ c: Conn, _ sid: Connection.StreamID, _ bytes: ArraySlice<UInt8>) {
        defer { apply(c, c.instance.consumed(stream: sid, count: bytes.count, now: loop.now)) }
        guard let s = c.streams[sid], let peer = c.peer else { return }
        c.lastActivity = loop.now
        switch s.kind {
        case .identifyOut, .identifyPushIn:
            if let r = s.identify.onBytes(bytes) { identified(c, peer, r, sid) }
        case .pingOut:
            for e in s.ping?.onBytes(bytes, now: loop.now) ?? [] {
                switch e {
                case .rtt(let d):
                    s.rtts.append(d)
                    updateInfo(peer) { $0.rtt = d }
                    if s.pingRemaining > 0 { sendNextPing(c, sid, s) } else {
                        s.timer?.cancel()
                        s.pingDone?(.success(s.rtts))
                        s.pingDone = nil
                        apply(c, c.instance.closeWrite(stream: sid, now: loop.now))
                    }
                case .mismatch:
                    Counter(label: "lattica_protocol_errors_total", dimensions: [("protocol", "ping"), ("reason", "mismatch")]).increment()
                    s.fail("ping echo did not match")
                    apply(c, c.instance.reset(stream: sid, now: loop.now))
                }
            }
        case .requestOut, .requestIn:
            s.buffer.append(contentsOf: bytes)
            complete(c, sid, s, peer, finished: false)
        case .raw:
            s.raw?.onData?(bytes)
        case .identifyIn, .oneWay, .refused:
            break
        }
    }

    func streamFinished(_ c: Conn, _ sid: Connection.StreamID) {
        guard let s = c.streams[sid], let peer = c.peer else { return }
        switch s.kind {
        case .identifyOut, .identifyPushIn:
            if let r = s.identify.onFinished() { identified(c, peer, r, sid) }
        case .requestOut, .requestIn:
            complete(c, sid, s, peer, finished: true)
        case .pingOut:
            s.fail("peer closed the ping stream")
        case .raw:
            s.raw?.onEnd?(nil)
        case .identifyIn, .oneWay, .refused:
            break
        }
    }

    func streamGone(_ c: Conn, _ sid: Connection.StreamID, error: String?) {
        guard let s = c.streams.removeValue(forKey: sid) else { return }
        defer { if !c.pendingOpens.isEmpty { drainPendingOpens(c) } }
        if s.kind == .raw, error == nil {
            s.raw = nil  // finished cleanly both ways; onEnd(nil) already ran
        }
        s.fail(error ?? "stream closed before an answer")
    }

    func streamWritable(_ c: Conn, _ sid: Connection.StreamID) {
        c.streams[sid]?.raw?.onWritable?()
    }

    private func complete(_ c: Conn, _ sid: Connection.StreamID, _ s: StreamState, _ peer: PeerId, finished: Bool) {
        guard !s.answered else { return }
        let message: [UInt8]?
        do { message = try LengthPrefixed.decode(s.buffer, limit: settings.maxRequestBytes) } catch {
            Counter(label: "lattica_protocol_errors_total", dimensions: [("protocol", s.protocolID), ("reason", "framing")]).increment()
            s.answered = true
            s.fail("\(error)")
            apply(c, c.instance.reset(stream: sid, now: loop.now))
            return
        }
        guard let message else {
            if finished {
                s.answered = true
                s.fail("stream ended before a whole message arrived")
                apply(c, c.instance.reset(stream: sid, now: loop.now))
            }
            return
        }
        s.answered = true
        s.buffer = []
        switch s.kind {
        case .requestOut:
            s.deadline = nil
            s.responseDone?(.success(message))
            s.responseDone = nil
        case .requestIn:
            guard let h = requestHandlers[s.protocolID] else { return }
            servedCounter(s.protocolID).increment()
            h(peer, message) { [weak self, weak c] response in
                guard let self, let c, c.streams[sid] != nil else { return }
                switch response {
                case .some(let r) where r.isEmpty:  // no answer (one-way protocols): just close our side
                    self.apply(c, c.instance.closeWrite(stream: sid, now: self.loop.now))
                case .some(let r): self.write(c, sid, LengthPrefixed.encode(r), close: true)
                case .none: self.apply(c, c.instance.reset(stream: sid, now: self.loop.now))
                }
            }
        default:
            break
        }
    }

    /// `lattica_requests_served_total` per protocol, made once (the factory takes a lock).
    /// Only protocols with a registered handler get here, so the table is bounded.
    func servedCounter(_ proto: String) -> Counter {
        if let c = servedCounters[proto] { return c }
        let c = Counter(label: "lattica_requests_served_total", dimensions: [("protocol", proto)])
        servedCounters[proto] = c
        return c
    }

    // MARK: identify

    func ourIdentify(for c: Conn) -> Identify.Message {
        Identify.Message(protocolVersion: settings.protocolVersion, agentVersion: settings.agentVersion,
                         publicKey: identity.publicKey.protobuf.encoded(), listenAddrs: listenAddrs,
                         observedAddr: c.remoteAddr, protocols: supportedProtocols)
    }

    private func identified(_ c: Conn, _ peer: PeerId, _ r: Result<Identify.Message, Identify.DecodeError>, _ sid: Connection.StreamID) {
        switch r {
        case .failure(let e):
            Counter(label: "lattica_protocol_errors_total", dimensions: [("protocol", "identify"), ("reason", "decode")]).increment()
            logger.debug("bad identify", metadata: ["peer": "\(peer)", "error": "\(e)"])
            apply(c, c.instance.reset(stream: sid, now: loop.now))
        case .success(let m):
            if let claimed = m.peerId, claimed != peer {
                Counter(label: "lattica_protocol_errors_total", dimensions: [("protocol", "identify"), ("reason", "wrong_key")]).increment()
                apply(c, c.instance.close(now: loop.now))
                return
            }
            updateInfo(peer) { info in
                info.protocols = m.protocols
                info.agentVersion = m.agentVersion ?? ""
                info.protocolVersion = m.protocolVersion ?? ""
                info.observedAddr = m.observedAddr
                var addrs = m.listenAddrs
                for a in info.addrs where !addrs.contains(a) { addrs.append(a) }
                info.addrs = Array(addrs.prefix(32))
                info.lastSeen = loop.now
            }
            if let info = peerInfo[peer] {
                try? peerStore?.upsert(PeerRecord(
                    peerId: peer.description, addrs: info.addrs.map(\.bytes), protocols: info.protocols, agent: info.agentVersion,
                    rttMicros: info.rtt.map { $0.nanosecondsClamped / 1000 }, lastSeen: Int64(wallClockSeconds()), failures: 0))
                onIdentified?(peer, info)
            }
            onPeersChanged?()
        }
    }
}

/// A value that only the loop thread touches, carried through `EventLoop.execute`.
struct LoopBound<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
