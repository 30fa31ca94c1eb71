public import LatticaCore

extension Yamux {
    /// A yamux session as a value: feed it the peer's plaintext bytes and local commands, it
    /// returns directives (framed bytes to send, stream events). It never reads a clock and never
    /// traps on network input; a misbehaving peer ends in `.violation` + GoAway.
    ///
    /// Memory stays bounded: received data is handed out immediately as slices of the input
    /// (the peer cannot send beyond the windows we grant), queued send data is capped by
    /// `Settings.maxPendingSend*`, streams by `maxStreams`, closed-stream memory by a ring.
    public struct Instance: Sendable {
        public let role: Role
        public let settings: Settings
        public internal(set) var metrics = Metrics()
        /// The latest round-trip time measured with a ping, used for window auto-tuning.
        public internal(set) var rtt: Duration?

        var rng: SeededRandom
        var streams: [StreamID: StreamState] = [:]
        var nextOutboundID: UInt32
        var highestInboundID: UInt32 = 0
        var closedStreams: ClosedStreams
        /// Sum over streams of `maxReceiveWindow - defaultCredit` (rust-yamux's accumulated windows).
        var extraReceiveWindow = 0
        var totalPending = 0
        /// Outbound streams the peer has not acknowledged yet (bounded by `maxAckBacklog`).
        var ackBacklog = 0
        var outbox: Output
        var events: [Directive] = []
        var headerBuffer: [UInt8] = []
        var body: Body?
        var ping: PingState = .due(at: nil)
        public internal(set) var localGoAway = false
        public internal(set) var remoteGoAway = false
        /// No more frames are processed or produced (violation or fatal GoAway).
        public internal(set) var isClosed = false

        struct Body: Sendable {
            var streamID: StreamID
            var remaining: UInt32
            var deliver: Bool
            var fin: Bool
        }

        enum PingState: Sendable {
            case due(at: Instant?)
            case awaiting(nonce: UInt32, sentAt: Instant)
        }

        /// `noiseFramed`: lay `.send` bytes out as unsealed Noise frames for `Noise.Transport.sealFrames`
        /// (used by `Connection` to save a copy); plain yamux bytes otherwise.
        public init(role: Role, settings: Settings = Settings(), rng: SeededRandom, noiseFramed: Bool = false) {
            self.role = role
            self.settings = settings
            self.rng = rng
            self.nextOutboundID = role == .client ? 1 : 2
            self.closedStreams = ClosedStreams(capacity: settings.rememberedClosedStreams)
            self.outbox = Output(noiseFramed: noiseFramed)
        }

        // MARK: queries

        public var streamCount: Int { streams.count }
        public func sendWindow(_ id: StreamID) -> Int? { streams[id].map { Int($0.sendWindow) } }
        public func receiveWindowLimit(_ id: StreamID) -> Int? { streams[id].map { Int($0.maxReceiveWindow) } }
        public func pendingSendBytes(_ id: StreamID) -> Int? { streams[id]?.pendingCount }
        public func isOpen(_ id: StreamID) -> Bool { streams[id] != nil }
        /// Bytes `write` would send at once on the stream (send window minus what is queued).
        public func writableBytes(_ id: StreamID) -> Int {
            guard let s = streams[id], !s.finRequested else { return 0 }
            return max(0, Int(s.sendWindow) - s.pendingCount)
        }
        /// Total bytes queued by `write` and not yet sent, over all streams.
        public var pendingSendBytes: Int { totalPending }
        /// Bytes delivered to the application and not yet reported consumed, over all streams.
        public var bufferedReceiveBytes: Int { streams.values.reduce(0) { $0 + $1.buffered } }

        /// When `onTimer` should next be called (RTT ping), if at all.
        public var nextDeadline: Instant? {
            guard !isClosed else { return nil }
            if case .due(let at) = ping { return at ?? Instant(nanoseconds: .min) }
            return nil
        }

        // MARK: commands

        /// Sends the first RTT ping. Optional: `onTimer` does the same when first called.
        public mutating func start(now: Instant) -> [Directive] { onTimer(now: now) }

        public mutating func onTimer(now: Instant) -> [Directive] {
            guard !isClosed else { return [] }
            if case .due(let at) = ping, at.map({ now >= $0 }) ?? true {
                let nonce = UInt32(truncatingIfNeeded: rng.next())
                appendFrame(.ping, flags: .syn, id: 0, length: nonce)
                ping = .awaiting(nonce: nonce, sentAt: now)
            }
            return drain()
        }

        /// Opens an outbound stream (announced with a SYN window update). Nil when the session is
        /// closed or going away, at `maxStreams`, at the ACK backlog limit or out of stream ids.
        public mutating func openStream(now: Instant) -> (id: StreamID, directives: [Directive])? {
            guard !isClosed, !localGoAway, !remoteGoAway, streams.count < settings.maxStreams else { return nil }
            guard nextOutboundID <= UInt32.max - 2 else { return nil }
            guard ackBacklog < settings.maxAckBacklog else { return nil }
            let id = nextOutboundID
            nextOutboundID += 2
            streams[id] = StreamState(outbound: true, sendWindow: Yamux.defaultCredit, now: now)
            ackBacklog += 1
            metrics.streamsOpenedOutbound += 1
            appendFrame(.windowUpdate, flags: .syn, id: id, length: 0)
            return (id, drain())
        }

        /// Sends `bytes` on a stream as far as its send window allows and queues the rest (up to
        /// the pending limits). Returns how many bytes were accepted; `.writable` follows once the
        /// queue has drained.
        public mutating func write(stream id: StreamID, bytes: [UInt8], now: Instant) -> (accepted: Int, directives: [Directive]) {
            write(stream: id, bytes: bytes[...], now: now)
        }

        /// Any byte collection (copied once; `[UInt8]` and `ArraySlice<UInt8>` take the direct path).
        public mutating func write(stream id: StreamID, bytes: some Collection<UInt8>, now: Instant) -> (accepted: Int, directives: [Directive]) {
            write(stream: id, bytes: ArraySlice(bytes), now: now)
        }

        public mutating func write(stream id: StreamID, bytes: ArraySlice<UInt8>, now: Instant) -> (accepted: Int, directives: [Directive]) {
            guard !isClosed, var s = streams[id], !s.finRequested, !bytes.isEmpty else { return (0, drain()) }
            streams[id] = nil  // edit outside the dictionary to avoid copies of `pending`
            var accepted = 0
            var rest = bytes
            if s.pendingCount == 0 {
                let direct = min(rest.count, Int(s.sendWindow))
                outbox.reserve(direct + (direct / settings.maxFrameBody + 1) * Yamux.headerLength)
                while !rest.isEmpty, s.sendWindow > 0 {
                    let n = min(rest.count, Int(s.sendWindow), settings.maxFrameBody)
                    let end = rest.startIndex + n
                    appendFrame(.data, flags: [], id: id, length: UInt32(n))
                    outbox.append(rest[rest.startIndex..<end])
                    s.sendWindow -= UInt32(n)
                    rest = rest[end...]
                    accepted += n
                }
            }
            if s.sendWindow == 0 { s.blocked = true }  // `.writable` once the peer grants more
            if !rest.isEmpty {
                let room = min(settings.maxPendingSendPerStream - s.pendingCount,
                               settings.maxPendingSendPerConnection - totalPending)
                let n = max(0, min(room, rest.count))
                s.pending.append(contentsOf: rest.prefix(n))
                totalPending += n
                accepted += n
                s.blocked = true
            }
            streams[id] = s
            return (accepted, drain())
        }

        /// Half-closes our direction (FIN, sent after any queued data).
        public mutating func closeWrite(stream id: StreamID, now: Instant) -> [Directive] {
            guard !isClosed, streams[id] != nil, !streams[id]!.finRequested else { return drain() }
            streams[id]!.finRequested = true
            if streams[id]!.pendingCount == 0 { sendFin(id, now: now) }
            return drain()
        }

        /// Resets a stream (RST) and forgets it.
        public mutating func reset(stream id: StreamID, now: Instant) -> [Directive] {
            guard !isClosed, streams[id] != nil else { return drain() }
            appendFrame(.windowUpdate, flags: .rst, id: id, length: 0)
            removeStream(id, now: now)
            return drain()
        }

        /// The application has read `count` bytes of the stream; may grant the peer more window
        /// (auto-tuned toward the bandwidth-delay product, see `nextWindowUpdate`).
        public mutating func consumed(stream id: StreamID, count: Int, now: Instant) -> [Directive] {
            guard !isClosed, var s = streams[id] else { return drain() }
            s.buffered -= min(max(0, count), s.buffered)
            if !s.remoteFinished, let delta = nextWindowUpdate(&s, now: now) {
                appendFrame(.windowUpdate, flags: [], id: id, length: delta)
                metrics.windowUpdatesSent += 1
            }
            streams[id] = s
            return drain()
        }

        /// Sends GoAway: no new streams either way. A non-normal code also closes the session.
        public mutating func goAway(_ code: GoAwayCode = .normal, now: Instant) -> [Directive] {
            guard !isClosed, !localGoAway else { return drain() }
            localGoAway = true
            appendFrame(.goAway, flags: [], id: 0, length: code.rawValue)
            if code != .normal { isClosed = true }
            return drain()
        }

        /// In `noiseFramed` mode: the unsealed Noise frames written so far (not reported as `.send`).
        public mutating func takeNoiseFramedOutput() -> [UInt8] {
            outbox.take()
        }

        // MARK: internals shared with the receive path

        mutating func drain() -> [Directive] {
            var d: [Directive] = []
            if !outbox.isEmpty && !outbox.noiseFramed {
                d.reserveCapacity(events.count + 1)
                d.append(.send(outbox.take()))
            }
            if !events.isEmpty {
                d.append(contentsOf: events)
                events.removeAll(keepingCapacity: true)
            }
            return d
        }

        mutating func appendFrame(_ type: FrameType, flags: Flags, id: StreamID, length: UInt32) {
            outbox.appendHeader(Header(type: type, flags: flags, streamID: id, length: length))
            metrics.framesSent += 1
        }

        mutating func sendFin(_ id: StreamID, now: Instant) {
            appendFrame(.data, flags: .fin, id: id, length: 0)
            streams[id]!.finSent = true
            if streams[id]!.remoteFinished {
                events.append(.closed(id))
                removeStream(id, now: now)
            }
        }

        mutating func removeStream(_ id: StreamID, now: Instant) {
            guard let s = streams.removeValue(forKey: id) else { return }
            if s.awaitingAck { ackBacklog -= 1 }
            extraReceiveWindow -= Int(s.maxReceiveWindow - Yamux.defaultCredit)
            totalPending -= s.pendingCount
            closedStreams.insert(id, at: now)
        }

        /// Sends queued bytes as the window allows; FIN and `.writable` once the queue is empty.
        mutating func flushPending(_ id: StreamID, now: Instant) {
            guard var s = streams[id] else { return }
            streams[id] = nil
            let flushable = min(s.pendingCount, Int(s.sendWindow))
            if flushable > 0 {
                outbox.reserve(flushable + (flushable / settings.maxFrameBody + 1) * Yamux.headerLength)
            }
            while s.pendingCount > 0, s.sendWindow > 0 {
                let n = min(s.pendingCount, Int(s.sendWindow), settings.maxFrameBody)
                appendFrame(.data, flags: [], id: id, length: UInt32(n))
                outbox.append(s.pending[s.pendingStart..<(s.pendingStart + n)])
                s.pendingStart += n
                s.sendWindow -= UInt32(n)
                totalPending -= n
            }
            if s.pendingCount == 0 {
                s.pending.removeAll(keepingCapacity: s.pending.capacity <= 256 * 1024)
                s.pendingStart = 0
            } else if s.pendingStart >= 64 * 1024 && s.pendingStart * 2 >= s.pending.count {
                s.pending.removeFirst(s.pendingStart)
                s.pendingStart = 0
            }
            streams[id] = s
            if s.pendingCount == 0 {
                if s.blocked && s.sendWindow > 0 {
                    streams[id]!.blocked = false
                    if !s.finRequested { events.append(.writable(id)) }
                }
                if s.finRequested && !s.finSent { sendFin(id, now: now) }
            }
        }

        /// rust-yamux's receive-window auto-tuning: grant a window update once half the window
        /// has been read; if that took less than two round trips, double the window first,
        /// bounded by this stream's share of `maxConnectionReceiveWindow` and `maxStreamReceiveWindow`.
        mutating func nextWindowUpdate(_ s: inout StreamState, now: Instant) -> UInt32? {
            let received = Int(s.maxReceiveWindow - s.receiveWindow)
            var next = max(0, received - s.buffered)
            guard next >= Int(s.maxReceiveWindow / 2) else { return nil }
            if let rtt, now - s.lastWindowUpdate < rtt * 2 {
                let shared = settings.maxConnectionReceiveWindow - settings.maxStreams * Int(Yamux.defaultCredit)
                let budget = max(0, shared - extraReceiveWindow)
                let doubled = Int(s.maxReceiveWindow) * 2
                let newMax = max(Int(s.maxReceiveWindow),
                                 min(doubled, Int(s.maxReceiveWindow) + budget, Int(settings.maxStreamReceiveWindow)))
                if newMax > Int(s.maxReceiveWindow) {
                    extraReceiveWindow += newMax - Int(s.maxReceiveWindow)
                    s.maxReceiveWindow = UInt32(newMax)
                    metrics.windowGrowths += 1
                    next = max(0, Int(s.maxReceiveWindow - s.receiveWindow) - s.buffered)
                }
            }
            s.lastWindowUpdate = now
            s.receiveWindow += UInt32(next)
            return next > 0 ? UInt32(next) : nil
        }
    }
}
