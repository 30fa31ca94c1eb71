public import LatticaCore

extension Connection.Instance {
    public typealias StreamID = Connection.StreamID

    /// Opens a stream and proposes `protocols` (in order of preference). With a single protocol
    /// the stream is writable at once (the data follows the proposal, as rust-libp2p's V1Lazy);
    /// with several, writes are refused until `.streamOpened`. Nil when the muxer is not up or
    /// refuses a new stream.
    public mutating func openStream(protocols: [String], now: Instant) -> (id: StreamID, directives: [Connection.Directive])? {
        guard case .open = phase, !protocols.isEmpty, let (id, d) = yamux.openStream(now: now) else { return nil }
        absorb(d, now: now)
        var ms = Multistream.Instance(dialing: protocols, settings: settings.multistream)
        let first = ms.start()
        streams[id] = StreamSlot(negotiation: ms, protocolID: nil, inbound: false, optimistic: protocols.count == 1)
        handleStreamNegotiation(id, first, now: now)
        return (id, flush())
    }

    /// Writes stream bytes; returns how many were accepted (the rest: wait for `.writable`).
    public mutating func write(stream id: StreamID, bytes: [UInt8], now: Instant) -> (accepted: Int, directives: [Connection.Directive]) {
        write(stream: id, bytes: bytes[...], now: now)
    }

    /// Any byte collection (copied once; `[UInt8]` and `ArraySlice<UInt8>` take the direct path).
    public mutating func write(stream id: StreamID, bytes: some Collection<UInt8>, now: Instant) -> (accepted: Int, directives: [Connection.Directive]) {
        write(stream: id, bytes: ArraySlice(bytes), now: now)
    }

    public mutating func write(stream id: StreamID, bytes: ArraySlice<UInt8>, now: Instant) -> (accepted: Int, directives: [Connection.Directive]) {
        guard case .open = phase, let slot = streams[id], slot.protocolID != nil || slot.optimistic else { return (0, flush()) }
        let (n, d) = yamux.write(stream: id, bytes: bytes, now: now)
        absorb(d, now: now)
        return (n, flush())
    }

    /// Half-closes our side of the stream.
    public mutating func closeWrite(stream id: StreamID, now: Instant) -> [Connection.Directive] {
        guard case .open = phase, streams[id] != nil else { return flush() }
        absorb(yamux.closeWrite(stream: id, now: now), now: now)
        return flush()
    }

    /// Resets the stream; it is forgotten at once.
    public mutating func reset(stream id: StreamID, now: Instant) -> [Connection.Directive] {
        guard case .open = phase, streams.removeValue(forKey: id) != nil else { return flush() }
        absorb(yamux.reset(stream: id, now: now), now: now)
        return flush()
    }

    /// The application has read `count` bytes of `.data` on the stream (returns window to the peer).
    public mutating func consumed(stream id: StreamID, count: Int, now: Instant) -> [Connection.Directive] {
        guard case .open = phase, streams[id] != nil else { return flush() }
        absorb(yamux.consumed(stream: id, count: count, now: now), now: now)
        return flush()
    }

    /// What inbound streams may negotiate: the settings' protocols, plus ping when answered here.
    static func inboundProtocols(_ settings: Connection.Settings) -> [String] {
        settings.answerPings && !settings.protocols.contains(Ping.protocolID)
            ? settings.protocols + [Ping.protocolID] : settings.protocols
    }

    /// Bytes a `write` would put on the wire at once (the peer's window minus what is queued).
    /// Writing no more than this avoids an extra copy into the stream's send queue.
    public func writableBytes(_ id: StreamID) -> Int {
        guard let slot = streams[id], slot.protocolID != nil || slot.optimistic else { return 0 }
        return yamux.writableBytes(id)
    }

    /// Bytes accepted by `write` and not yet sent, per stream.
    public func pendingSendBytes(_ id: StreamID) -> Int? { yamux.pendingSendBytes(id) }

    // MARK: yamux events

    /// Yamux writes unsealed Noise frames and keeps appending to the open one until they are
    /// taken here, once per call into the connection (`flush`): everything one call produces on
    /// every stream goes out in as few Noise frames as possible, sealed where they lie (no copy
    /// when `raw` is empty).
    mutating func sealMuxerOutput() {
        guard case .open = phase, transport != nil else { return }
        var framed = yamux.takeNoiseFramedOutput()
        guard !framed.isEmpty else { return }
        if transport!.sealFrames(&framed) {
            if raw.isEmpty { raw = framed } else { raw += framed }
        } else {
            close(.transportFailed(.nonceExhausted))
        }
    }

    mutating func absorb(_ ds: [Yamux.Directive], now: Instant) {
        for d in ds {
            switch d {
            case .send(let b): sendPlain(b[...])
            case .opened(let id):
                var ms = Multistream.Instance(listening: inboundProtocols, settings: settings.multistream)
                let first = ms.start()
                streams[id] = StreamSlot(negotiation: ms, protocolID: nil, inbound: true, optimistic: false)
                handleStreamNegotiation(id, first, now: now)
            case .data(let id, let bytes): onStreamData(id, bytes, now: now)
            case .finished(let id):
                guard let slot = streams[id] else { continue }
                if slot.protocolID == nil {
                    failStream(id, .closedDuringNegotiation, now: now)
                } else if slot.pingResponder != nil {
                    absorb(yamux.closeWrite(stream: id, now: now), now: now)
                } else {
                    events.append(.finished(id))
                }
            case .reset(let id):
                guard let slot = streams.removeValue(forKey: id) else { continue }
                if slot.protocolID == nil {
                    events.append(.streamFailed(id, .closedDuringNegotiation))
                } else if slot.pingResponder == nil {
                    events.append(.reset(id))
                }
            case .writable(let id):
                if let slot = streams[id], slot.protocolID != nil || slot.optimistic, slot.pingResponder == nil {
                    events.append(.writable(id))
                }
            case .closed(let id):
                guard let slot = streams.removeValue(forKey: id) else { continue }
                if slot.pingResponder == nil, slot.protocolID != nil { events.append(.streamClosed(id)) }
            case .rtt(let r): events.append(.rtt(r))
            case .goAway(let code): events.append(.goAway(code))
            case .violation(let v): close(.muxerViolation(v))
            }
        }
    }

    mutating func onStreamData(_ id: StreamID, _ bytes: ArraySlice<UInt8>, now: Instant) {
        guard var slot = streams[id] else { return }
        if slot.protocolID != nil {
            if slot.pingResponder != nil {
                let echo = slot.pingResponder!.onBytes(bytes)
                streams[id] = slot
                absorb(yamux.consumed(stream: id, count: bytes.count, now: now), now: now)
                if !echo.isEmpty { absorb(yamux.write(stream: id, bytes: echo[...], now: now).directives, now: now) }
            } else {
                events.append(.data(id, bytes))
            }
            return
        }
        guard var ms = slot.negotiation else { return }
        slot.negotiationBytes += bytes.count
        guard slot.negotiationBytes <= settings.maxNegotiationBytes else {
            return failStream(id, .negotiationTooLong, now: now)
        }
        let d = ms.onBytes(bytes)
        slot.negotiation = ms
        streams[id] = slot
        handleStreamNegotiation(id, d, now: now)
    }

    mutating func handleStreamNegotiation(_ id: StreamID, _ ds: [Multistream.Directive], now: Instant) {
        for d in ds {
            guard streams[id] != nil else { return }
            switch d {
            case .send(let b):
                absorb(yamux.write(stream: id, bytes: b[...], now: now).directives, now: now)
            case .failed(let f):
                failStream(id, .negotiation(f), now: now)
            case .negotiated(let p, let leftover):
                streams[id]!.negotiation = nil
                streams[id]!.protocolID = p
                let slot = streams[id]!
                // Return the negotiation bytes to the window; leftover is the application's to consume.
                let used = slot.negotiationBytes - leftover.count
                if used > 0 { absorb(yamux.consumed(stream: id, count: used, now: now), now: now) }
                if slot.inbound && p == Ping.protocolID && settings.answerPings {
                    streams[id]!.pingResponder = Ping.Responder()
                } else {
                    events.append(.streamOpened(id, protocol: p, inbound: slot.inbound))
                }
                if !leftover.isEmpty { onStreamData(id, leftover[...], now: now) }
            }
        }
    }

    mutating func failStream(_ id: StreamID, _ f: Connection.StreamFailure, now: Instant) {
        guard streams.removeValue(forKey: id) != nil else { return }
        events.append(.streamFailed(id, f))
        absorb(yamux.reset(stream: id, now: now), now: now)
    }
}
