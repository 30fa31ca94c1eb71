public import LatticaCore

extension DHT.Instance {
    /// An inbound request (one frame body) from `peer` on a stream the shell identifies with `inbound`.
    public mutating func onRequest(_ bytes: ArraySlice<UInt8>, from peer: PeerId, inbound: DHT.InboundID, now: Instant) -> [DHT.Directive] {
        metrics.inboundRequests += 1
        guard settings.mode == .server else { metrics.inboundRejected += 1; return [.resetInbound(inbound, from: peer)] }
        do {
            let d = try DHT.Message.decode(bytes, limits: settings.decodeLimits)
            return handleRequest(d.message, from: peer, inbound: inbound, now: now)
        } catch {
            metrics.inboundRejected += 1
            return misbehaved(peer, decodeMisbehavior(error)) + [.resetInbound(inbound, from: peer)]
        }
    }

    /// A decoded inbound request (simulator path).
    public mutating func onRequest(_ message: DHT.Message, from peer: PeerId, inbound: DHT.InboundID, now: Instant) -> [DHT.Directive] {
        metrics.inboundRequests += 1
        guard settings.mode == .server else { metrics.inboundRejected += 1; return [.resetInbound(inbound, from: peer)] }
        return handleRequest(message, from: peer, inbound: inbound, now: now)
    }

    func closerPeers(to key: [UInt8], excluding requester: PeerId) -> [DHT.Peer] {
        var out = routingTable.closest(to: DHT.Key(hashing: key), count: settings.k, excluding: requester)
            .map { DHT.Peer(id: $0.peer, addrs: $0.addresses) }
        if let target = try? PeerId(multihash: key), target != requester, let addrs = connectedClients[target],
           !out.contains(where: { $0.id == target }) {
            out.insert(DHT.Peer(id: target, addrs: addrs), at: 0)
        }
        return out
    }

    mutating func handleRequest(_ m: DHT.Message, from peer: PeerId, inbound: DHT.InboundID, now: Instant) -> [DHT.Directive] {
        func reject(_ why: DHT.Misbehavior) -> [DHT.Directive] {
            metrics.inboundRejected += 1
            return misbehaved(peer, why) + [.resetInbound(inbound, from: peer)]
        }
        switch m.type {
        case .ping:
            return [.respond(DHT.Message(type: .ping), to: peer, inbound: inbound)]

        case .findNode:
            guard !m.key.isEmpty else { return reject(.malformedMessage("FIND_NODE without key")) }
            return [.respond(DHT.Message(type: .findNode, closerPeers: closerPeers(to: m.key, excluding: peer)), to: peer, inbound: inbound)]

        case .getValue:
            guard !m.key.isEmpty else { return reject(.malformedMessage("GET_VALUE without key")) }
            var reply = DHT.Message(type: .getValue, key: m.key, closerPeers: closerPeers(to: m.key, excluding: peer))
            if let r = store.get(m.key, now: now) {
                var rec = r.record
                rec.ttl = 0; rec.publisher = []
                reply.record = rec
            }
            return [.respond(reply, to: peer, inbound: inbound)]

        case .putValue:
            guard let rec = m.record, !rec.key.isEmpty else { return reject(.malformedMessage("PUT_VALUE without record")) }
            guard rec.key == m.key || m.key.isEmpty else { return reject(.invalidRecord(.keyMismatch)) }
            guard takeWriteToken(peer, now: now) else { metrics.recordsRejected += 1; return reject(.rateLimited) }
            if let why = validator.validate(key: rec.key, value: rec.value) {
                metrics.recordsRejected += 1
                return reject(.invalidRecord(why))
            }
            if let old = store.get(rec.key, now: now), let why = validator.mayReplace(key: rec.key, old: old.record.value, new: rec.value) {
                metrics.recordsRejected += 1
                if why == .notNewer {
                    // An older record is not misbehaviour (it may simply be stale); just do not store it.
                    metrics.inboundRejected += 1
                    return [.resetInbound(inbound, from: peer)]
                }
                return reject(.invalidRecord(why))
            }
            var ttl = settings.recordTTL
            if rec.ttl > 0, Duration.seconds(Int64(rec.ttl)) < ttl { ttl = .seconds(Int64(rec.ttl)) }
            let stored = DHT.StoredRecord(record: DHT.Record(key: rec.key, value: rec.value, publisher: rec.publisher),
                                          storedBy: peer, expires: now + ttl, isLocal: false)
            if let why = store.put(stored, now: now) {
                metrics.recordsRejected += 1
                if why == .perPeerCountLimit || why == .perPeerByteLimit { return reject(.rateLimited) }
                metrics.inboundRejected += 1
                return [.resetInbound(inbound, from: peer)]
            }
            metrics.recordsStored += 1
            return [.persist(.putRecord(stored)), .respond(m, to: peer, inbound: inbound)]

        case .addProvider:
            guard !m.key.isEmpty else { return reject(.malformedMessage("ADD_PROVIDER without key")) }
            guard takeWriteToken(peer, now: now) else { return reject(.rateLimited) }
            var out: [DHT.Directive] = []
            var mismatched = false
            for p in m.providerPeers {
                // Only the sender may announce itself (kad-dht spec).
                guard p.id == peer else { mismatched = true; continue }
                let rec = DHT.ProviderRecord(key: m.key, provider: p.info, expires: now + settings.providerTTL, isLocal: false)
                if store.addProvider(rec, now: now) == nil {
                    metrics.providersStored += 1
                    out.append(.persist(.putProvider(rec)))
                }
            }
            if mismatched { out += misbehaved(peer, .providerMismatch) }
            return out  // ADD_PROVIDER has no response; the shell closes the stream.

        case .getProviders:
            guard !m.key.isEmpty else { return reject(.malformedMessage("GET_PROVIDERS without key")) }
            let providers = store.providers(for: m.key, now: now).prefix(settings.k).map { DHT.Peer(id: $0.provider.id, addrs: $0.provider.addresses) }
            let reply = DHT.Message(type: .getProviders, key: m.key, closerPeers: closerPeers(to: m.key, excluding: peer),
                                    providerPeers: Array(providers))
            return [.respond(reply, to: peer, inbound: inbound)]
        }
    }

    /// Token bucket per peer for inbound writes (PUT_VALUE, ADD_PROVIDER).
    mutating func takeWriteToken(_ peer: PeerId, now: Instant) -> Bool {
        let burst = Double(settings.writeBurstPerPeer)
        let perSecond = Double(settings.writesPerPeerPerMinute) / 60
        var b = writeTokens[peer] ?? (tokens: burst, at: now)
        b.tokens = min(burst, b.tokens + (now - b.at).secondsDouble * perSecond)
        b.at = now
        guard b.tokens >= 1 else { writeTokens[peer] = b; return false }
        b.tokens -= 1
        writeTokens[peer] = b
        return true
    }
}
