public import LatticaCore

extension Yamux.Instance {
    public typealias StreamID = Yamux.StreamID

    /// Feeds plaintext bytes from the peer. Data is delivered as slices of `input` without copying,
    /// also for frames split across calls.
    public mutating func onBytes(_ input: ArraySlice<UInt8>, now: Instant) -> [Yamux.Directive] {
        guard !isClosed else { return [] }
        metrics.bytesReceived += input.count
        var i = input.startIndex
        while i < input.endIndex, !isClosed {
            if var b = body {
                let take = min(Int(b.remaining), input.endIndex - i)
                let chunk = input[i..<(i + take)]
                i += take
                b.remaining -= UInt32(take)
                if b.deliver, take > 0, streams[b.streamID] != nil {
                    streams[b.streamID]!.buffered += take
                    events.append(.data(b.streamID, chunk))
                }
                if b.remaining == 0 {
                    body = nil
                    if b.fin { onRemoteFin(b.streamID, now: now) }
                } else {
                    body = b
                }
                continue
            }
            let header: Yamux.Header
            if headerBuffer.isEmpty, input.endIndex - i >= Yamux.headerLength {
                header = Yamux.Header(decoding: input[i..<(i + Yamux.headerLength)])
                i += Yamux.headerLength
            } else {
                let take = min(Yamux.headerLength - headerBuffer.count, input.endIndex - i)
                headerBuffer.append(contentsOf: input[i..<(i + take)])
                i += take
                guard headerBuffer.count == Yamux.headerLength else { break }
                header = Yamux.Header(decoding: headerBuffer)
                headerBuffer.removeAll(keepingCapacity: true)
            }
            onHeader(header, now: now)
        }
        return drain()
    }

    mutating func violate(_ v: Yamux.Violation) {
        metrics.violations += 1
        appendFrame(.goAway, flags: [], id: 0, length: Yamux.GoAwayCode.protocolError.rawValue)
        events.append(.violation(v))
        isClosed = true
        body = nil
    }

    func isRemoteID(_ id: StreamID) -> Bool {
        id != 0 && (role == .client ? id % 2 == 0 : id % 2 == 1)
    }

    mutating func onHeader(_ h: Yamux.Header, now: Instant) {
        metrics.framesReceived += 1
        guard h.version == 0 else { return violate(.badVersion(h.version)) }
        guard let type = h.frameType else { return violate(.unknownFrameType(h.type)) }
        switch type {
        case .data:
            guard h.length <= settings.maxReceiveFrameBody else { return violate(.frameTooLarge(h.length)) }
            onStreamFrame(h, isData: true, now: now)
        case .windowUpdate:
            onStreamFrame(h, isData: false, now: now)
        case .ping:
            if h.flags.contains(.ack) {
                if case .awaiting(let nonce, let sentAt) = ping, nonce == h.length {
                    let measured = now - sentAt
                    rtt = measured
                    events.append(.rtt(measured))
                    ping = .due(at: now + settings.pingInterval)
                } else {
                    metrics.framesIgnored += 1
                }
            } else {
                appendFrame(.ping, flags: .ack, id: h.streamID, length: h.length)
                metrics.pingsAnswered += 1
            }
        case .goAway:
            if !remoteGoAway {
                remoteGoAway = true
                events.append(.goAway(Yamux.GoAwayCode(rawValue: h.length) ?? .internalError))
            }
        }
    }

    /// Skips the body of a data frame we do not deliver.
    mutating func skipBody(_ h: Yamux.Header, isData: Bool) {
        if isData, h.length > 0 { body = Body(streamID: h.streamID, remaining: h.length, deliver: false, fin: false) }
    }

    mutating func onStreamFrame(_ h: Yamux.Header, isData: Bool, now: Instant) {
        let id = h.streamID
        guard id != 0 else { return violate(.invalidStreamID(0)) }
        if h.flags.contains(.syn) { return onNewStream(h, isData: isData, now: now) }
        if h.flags.contains(.rst) {
            if streams[id] != nil {
                removeStream(id, now: now)
                events.append(.reset(id))
            }
            return skipBody(h, isData: isData)
        }
        guard streams[id] != nil else { return onUnknownStream(h, isData: isData, now: now) }
        if h.flags.contains(.ack), streams[id]!.awaitingAck {
            streams[id]!.awaitingAck = false
            ackBacklog -= 1
        }
        if isData {
            guard h.length <= streams[id]!.receiveWindow else { return violate(.dataBeyondWindow(id)) }
            streams[id]!.receiveWindow -= h.length
            if streams[id]!.remoteFinished {
                metrics.framesIgnored += 1
                return skipBody(h, isData: true)
            }
            if h.length > 0 {
                body = Body(streamID: id, remaining: h.length, deliver: true, fin: h.flags.contains(.fin))
            } else if h.flags.contains(.fin) {
                onRemoteFin(id, now: now)
            }
        } else {
            let (sum, overflow) = streams[id]!.sendWindow.addingReportingOverflow(h.length)
            guard !overflow else { return violate(.windowOverflow(id)) }
            streams[id]!.sendWindow = sum
            if h.flags.contains(.fin) { onRemoteFin(id, now: now) }
            flushPending(id, now: now)
        }
    }

    mutating func onNewStream(_ h: Yamux.Header, isData: Bool, now: Instant) {
        let id = h.streamID
        guard isRemoteID(id) else { return violate(.invalidStreamID(id)) }
        guard streams[id] == nil else { return violate(.duplicateStream(id)) }
        if isData, h.length > Yamux.defaultCredit { return violate(.dataBeyondWindow(id)) }
        var sendWindow = Yamux.defaultCredit
        if !isData {
            let (sum, overflow) = sendWindow.addingReportingOverflow(h.length)
            guard !overflow else { return violate(.windowOverflow(id)) }
            sendWindow = sum
        }
        highestInboundID = max(highestInboundID, id)
        if localGoAway || streams.count >= settings.maxStreams {
            metrics.streamsRefused += 1
            appendFrame(.windowUpdate, flags: .rst, id: id, length: 0)
            closedStreams.insert(id, at: now)
            return skipBody(h, isData: isData)
        }
        var s = Yamux.StreamState(outbound: false, sendWindow: sendWindow, now: now)
        if isData { s.receiveWindow -= h.length }
        streams[id] = s
        metrics.streamsOpenedInbound += 1
        events.append(.opened(id))
        appendFrame(.windowUpdate, flags: .ack, id: id, length: 0)
        if isData, h.length > 0 {
            body = Body(streamID: id, remaining: h.length, deliver: true, fin: h.flags.contains(.fin))
        } else if h.flags.contains(.fin) {
            onRemoteFin(id, now: now)
        }
    }

    mutating func onUnknownStream(_ h: Yamux.Header, isData: Bool, now: Instant) {
        let id = h.streamID
        if let closedAt = closedStreams.closedTime(id) {
            guard now - closedAt <= settings.closedStreamGrace else { return violate(.frameForClosedStream(id)) }
        } else {
            // Never opened by either side: not a late frame but a broken peer.
            let neverOpened = isRemoteID(id) ? id > highestInboundID : id >= nextOutboundID
            if neverOpened { return violate(.invalidStreamID(id)) }
        }
        metrics.framesIgnored += 1
        skipBody(h, isData: isData)
    }

    mutating func onRemoteFin(_ id: StreamID, now: Instant) {
        guard let s = streams[id], !s.remoteFinished else { return }
        streams[id]!.remoteFinished = true
        events.append(.finished(id))
        if s.finSent {
            events.append(.closed(id))
            removeStream(id, now: now)
        }
    }
}
