public import LatticaCore

extension DHT.Instance {
    public typealias Key = DHT.Key
    public typealias Directive = DHT.Directive
    public typealias QueryID = DHT.QueryID

    struct Query: Sendable {
        enum Kind: Sendable {
            case findNode
            case getValue(quorum: Int)
            case putValue(DHT.Record, quorum: Int)
            case addProvider(quorum: Int)
            case getProviders(wanted: Int)
            case bootstrap
            case refresh
        }
        enum Phase: Sendable { case lookup, storing(waiting: Int, success: Int, failed: Int) }
        var kind: Kind
        var key: [UInt8]
        var target: DHT.Key
        var lookup: DHT.DisjointLookup
        var phase: Phase = .lookup
        var stats = DHT.QueryStats()
        var requestType: DHT.Message.MessageType
        // GET_VALUE
        var best: DHT.Record? = nil
        var copies = 0
        var bestPeers: [PeerId] = []
        var outdated: Set<PeerId> = []
        // GET_PROVIDERS
        var providers: [DHT.PeerInfo] = []
        var isInternal: Bool { if case .bootstrap = kind { return true }; if case .refresh = kind { return true }; return false }
    }

    // MARK: Public operations

    /// Iterative FIND_NODE for `key` (a PeerId's bytes, or any key): the k closest peers.
    public mutating func findNode(_ key: [UInt8], now: Instant) -> (DHT.QueryID, [DHT.Directive]) {
        startQuery(.findNode, key: key, now: now)
    }

    /// GET_VALUE with a quorum of valid copies; the best record per the validator.
    public mutating func getValue(_ key: [UInt8], quorum: Int = 1, now: Instant) -> (DHT.QueryID, [DHT.Directive]) {
        startQuery(.getValue(quorum: max(1, quorum)), key: key, now: now)
    }

    /// Stores locally, finds the k closest peers, then PUT_VALUE to each; fails with
    /// `.quorumFailed(success:quorum:)` when fewer than `quorum` stored it.
    public mutating func putValue(_ key: [UInt8], value: [UInt8], quorum: Int = 1, now: Instant) -> (DHT.QueryID, [DHT.Directive]) {
        let record = DHT.Record(key: key, value: value)
        if let reject = validator.validate(key: key, value: value) {
            let id = allocateQueryID()
            metrics.queriesStarted += 1
            metrics.queriesFailed += 1
            var stats = DHT.QueryStats(); stats.started = now; stats.finished = now
            _ = reject
            return (id, [.queryFinished(id, .putValue(.failure(.quorumFailed(success: 0, quorum: quorum))), stats)])
        }
        let local = DHT.StoredRecord(record: record, storedBy: localPeer, expires: now + settings.recordTTL, isLocal: true)
        let persist: [DHT.Directive] = store.put(local, now: now) == nil ? [.persist(.putRecord(local))] : []
        lastPublished[key] = now
        let (id, ds) = startQuery(.putValue(record, quorum: max(1, quorum)), key: key, now: now)
        return (id, persist + ds)
    }

    /// Announces us as a provider of `key` to the k closest peers (ADD_PROVIDER).
    public mutating func provide(_ key: [UInt8], addresses: [[UInt8]] = [], quorum: Int = 1, now: Instant) -> (DHT.QueryID, [DHT.Directive]) {
        let local = DHT.ProviderRecord(key: key, provider: DHT.PeerInfo(id: localPeer, addresses: addresses),
                                       expires: now + settings.providerTTL, isLocal: true)
        let persist: [DHT.Directive] = store.addProvider(local, now: now) == nil ? [.persist(.putProvider(local))] : []
        lastProvided[key] = now
        let (id, ds) = startQuery(.addProvider(quorum: max(1, quorum)), key: key, now: now)
        return (id, persist + ds)
    }

    /// GET_PROVIDERS: finishes early once `wanted` distinct providers are known.
    public mutating func getProviders(_ key: [UInt8], wanted: Int = 20, now: Instant) -> (DHT.QueryID, [DHT.Directive]) {
        startQuery(.getProviders(wanted: max(1, wanted)), key: key, now: now)
    }

    // MARK: Query machinery

    mutating func allocateQueryID() -> DHT.QueryID {
        let id = DHT.QueryID(nextQueryID)
        nextQueryID += 1
        return id
    }

    mutating func startQuery(_ kind: Query.Kind, key: [UInt8], extraSeeds: [DHT.PeerInfo] = [], now: Instant) -> (DHT.QueryID, [DHT.Directive]) {
        let id = allocateQueryID()
        let target = Key(hashing: key)
        routingTable.noteLookup(toward: target, now: now)
        var seeds = routingTable.closest(to: target, count: settings.k).map { (peer: $0.peer, key: $0.key, addresses: $0.addresses) }
        for s in extraSeeds where s.id != localPeer && !seeds.contains(where: { $0.peer == s.id }) {
            seeds.append((peer: s.id, key: Key(peer: s.id), addresses: s.addresses))
        }
        let requestType: DHT.Message.MessageType
        switch kind {
        case .getValue: requestType = .getValue
        case .getProviders: requestType = .getProviders
        default: requestType = .findNode
        }
        var q = Query(kind: kind, key: key, target: target,
                      lookup: DHT.DisjointLookup(target: target, seeds: seeds, paths: settings.disjointPaths,
                                                 alpha: settings.alpha, numResults: settings.k),
                      requestType: requestType)
        q.stats.started = now
        if case .getValue = kind, let local = store.get(key, now: now) {
            q.best = local.record
            q.copies = 1
        }
        if case .getProviders = kind {
            q.providers = store.providers(for: key, now: now).map(\.provider)
        }
        if !q.isInternal { metrics.queriesStarted += 1 }
        queries[id] = q
        var out: [Directive] = [.scheduleTimer(.queryTimeout(id), at: now + settings.queryTimeout)]
        out += drive(id, now: now)
        return (id, out)
    }

    /// Sends whatever the lookup wants next; completes the lookup phase when it is done.
    mutating func drive(_ id: DHT.QueryID, now: Instant) -> [DHT.Directive] {
        guard var q = queries[id], case .lookup = q.phase else { return [] }
        if case .getValue(let quorum) = q.kind, q.copies >= quorum { q.lookup.finish() }
        if case .getProviders(let wanted) = q.kind, q.providers.count >= wanted { q.lookup.finish() }
        let contacts = q.lookup.nextContacts()
        var out: [Directive] = []
        let m = DHT.Message(type: q.requestType, key: q.key)
        q.stats.requests += contacts.count
        queries[id] = q
        for (path, c) in contacts {
            out += send(m, to: c.peer, key: c.key, addresses: c.addresses, purpose: .lookup(id, path: path), now: now)
        }
        // Finished means the k closest known answered (or a GET reached its quorum): requests still
        // in flight to farther peers cannot change the result, so do not wait for them.
        if queries[id]!.lookup.isFinished {
            out += lookupFinished(id, now: now)
        }
        return out
    }

    mutating func onResponse(_ decoded: DHT.Decoded, request: DHT.RequestID, now: Instant) -> [DHT.Directive] {
        guard let p = pending.removeValue(forKey: request) else { return [] }
        let m = decoded.message
        metrics.responsesReceived += 1
        var out: [Directive] = []
        let expected: DHT.Message.MessageType = p.type
        guard m.type == expected else {
            out += misbehaved(p.peer, .unexpectedResponseType)
            pending[request] = p
            return out + failRequest(request, timedOut: false, now: now)
        }
        if decoded.droppedPeers > 0 {
            metrics.garbagePeerEntries += decoded.droppedPeers
            out += misbehaved(p.peer, .garbageCloserPeers(decoded.droppedPeers))
        }
        // It answered a kad request: it is a server; keep it in the routing table.
        if case .probe = p.purpose {
            _ = routingTable.probeFinished(p.peer, key: p.key, alive: true, now: now)
        } else {
            out += heardFrom(p.peer, key: p.key, addresses: [], now: now)
        }
        switch p.purpose {
        case .lookup(let id, let path):
            out += lookupResponse(id, path: path, from: p.peer, message: m, now: now)
        case .store(let id):
            out += storeOutcome(id, success: true, now: now)
        case .probe, .correction:
            break
        }
        return out
    }

    /// Filters closer peers: drops ourselves, the responder itself (counted), duplicates.
    mutating func usableCloserPeers(_ peers: [DHT.Peer], from responder: PeerId, alreadyKnown: (PeerId) -> Bool = { _ in false },
                                    out: inout [DHT.Directive]) -> [(peer: PeerId, key: Key, addresses: [[UInt8]])] {
        var result: [(peer: PeerId, key: Key, addresses: [[UInt8]])] = []
        var seen = Set<PeerId>()
        var returnedItself = false
        for p in peers.prefix(settings.k * 2) {
            if p.id == responder { returnedItself = true; continue }
            if p.id == localPeer || alreadyKnown(p.id) || !seen.insert(p.id).inserted { continue }
            result.append((peer: p.id, key: Key(peer: p.id), addresses: p.addrs))
        }
        if returnedItself { out += misbehaved(responder, .returnedItselfAsCloser) }
        return result
    }

    mutating func lookupResponse(_ id: DHT.QueryID, path: Int, from peer: PeerId, message m: DHT.Message, now: Instant) -> [DHT.Directive] {
        guard queries[id] != nil else { return [] }
        var out: [Directive] = []
        let lookup = queries[id]!.lookup
        let closer = usableCloserPeers(m.closerPeers, from: peer, alreadyKnown: { lookup.knows($0, path: path) }, out: &out)
        var q = queries[id]!
        q.stats.successes += 1
        switch q.kind {
        case .getValue:
            if let r = m.record {
                if r.key != q.key {
                    out += misbehaved(peer, .invalidRecord(.keyMismatch))
                } else if let why = validator.validate(key: r.key, value: r.value) {
                    out += misbehaved(peer, .invalidRecord(why))
                } else if let best = q.best {
                    if best.value == r.value {
                        q.copies += 1; q.bestPeers.append(peer)
                    } else if validator.select(key: q.key, values: [best.value, r.value]) == 1 {
                        q.outdated.formUnion(q.bestPeers)
                        q.best = r; q.copies = 1; q.bestPeers = [peer]
                    } else {
                        q.outdated.insert(peer)
                    }
                } else {
                    q.best = r; q.copies = 1; q.bestPeers = [peer]
                }
            }
        case .getProviders:
            for p in m.providerPeers where !q.providers.contains(where: { $0.id == p.id }) {
                q.providers.append(p.info)
            }
        default: break
        }
        q.lookup.onSuccess(path: path, peer: peer, closer: closer)
        queries[id] = q
        return out + drive(id, now: now)
    }

    /// The lookup phase is over: report, or move on to storing.
    mutating func lookupFinished(_ id: DHT.QueryID, now: Instant) -> [DHT.Directive] {
        guard var q = queries[id] else { return [] }
        let closest = q.lookup.result
        if let first = closest.first {
            q.stats.hops = first.hops
            metrics.lookupHops[min(first.hops, metrics.lookupHops.count - 1)] += 1
        }
        switch q.kind {
        case .findNode, .bootstrap, .refresh:
            queries[id] = q
            return finish(id, .closestPeers(closest.map(\.peer)), ok: !closest.isEmpty || q.stats.requests == 0, now: now)
        case .getValue(let quorum):
            queries[id] = q
            var out: [Directive] = []
            if let best = q.best, settings.correctOutdatedRecords {
                // Entry correction: closest peers without the record, and peers with an older one.
                let holders = Set(q.bestPeers)
                var targets = closest.filter { !holders.contains($0.peer) }.map { ($0.peer, $0.key, $0.addresses) }
                for p in q.outdated where !targets.contains(where: { $0.0 == p }) {
                    if let c = closest.first(where: { $0.peer == p }) { targets.append((p, c.key, c.addresses)) }
                }
                let m = DHT.Message(type: .putValue, key: best.key, record: DHT.Record(key: best.key, value: best.value))
                for t in targets.prefix(settings.k) { out += send(m, to: t.0, key: t.1, addresses: t.2, purpose: .correction, now: now) }
            }
            if let best = q.best, q.copies >= 1 {
                let ok = q.copies >= quorum
                let result: Result<DHT.FoundRecord, DHT.QueryError> = ok
                    ? .success(DHT.FoundRecord(record: best, copies: q.copies))
                    : .failure(.notFound(found: q.copies, quorum: quorum))
                return out + finish(id, .getValue(result), ok: ok, now: now)
            }
            let err: DHT.QueryError = q.stats.requests == 0 ? .noPeers : .notFound(found: 0, quorum: quorum)
            return out + finish(id, .getValue(.failure(err)), ok: false, now: now)
        case .getProviders:
            queries[id] = q
            return finish(id, .getProviders(providers: q.providers, closest: closest.map(\.peer)), ok: true, now: now)
        case .putValue(let record, let quorum):
            let m = DHT.Message(type: .putValue, key: record.key, record: record)
            return startStoring(&q, id: id, message: m, targets: closest, quorum: quorum, expectsResponse: true, now: now)
        case .addProvider(let quorum):
            let me = DHT.Peer(id: localPeer, addrs: store.providers(for: q.key, now: now).first { $0.provider.id == localPeer }?.provider.addresses ?? [])
            let m = DHT.Message(type: .addProvider, key: q.key, providerPeers: [me])
            return startStoring(&q, id: id, message: m, targets: closest, quorum: quorum, expectsResponse: false, now: now)
        }
    }

    mutating func startStoring(_ q: inout Query, id: DHT.QueryID, message: DHT.Message, targets: [DHT.ClosestPeersIterator.Candidate],
                               quorum: Int, expectsResponse: Bool, now: Instant) -> [DHT.Directive] {
        q.phase = .storing(waiting: targets.count, success: 0, failed: 0)
        queries[id] = q
        if targets.isEmpty {
            return finishStore(id, success: 0, quorum: quorum, now: now)
        }
        var out: [Directive] = []
        for t in targets {
            out += send(message, to: t.peer, key: t.key, addresses: t.addresses, purpose: .store(id), expectsResponse: expectsResponse, now: now)
        }
        return out
    }

    mutating func storeOutcome(_ id: DHT.QueryID, success: Bool, now: Instant) -> [DHT.Directive] {
        guard var q = queries[id], case .storing(var waiting, var ok, var failed) = q.phase else { return [] }
        waiting -= 1
        if success { ok += 1 } else { failed += 1 }
        q.phase = .storing(waiting: waiting, success: ok, failed: failed)
        queries[id] = q
        guard waiting <= 0 else { return [] }
        return finishStore(id, success: ok, quorum: quorum(of: q), now: now)
    }

    func quorum(of q: Query) -> Int {
        switch q.kind {
        case .putValue(_, let n), .addProvider(let n), .getValue(let n): return n
        default: return 1
        }
    }

    mutating func finishStore(_ id: DHT.QueryID, success: Int, quorum: Int, now: Instant) -> [DHT.Directive] {
        guard let q = queries[id] else { return [] }
        let result: Result<Int, DHT.QueryError> = success >= quorum ? .success(success) : .failure(.quorumFailed(success: success, quorum: quorum))
        let ok = success >= quorum
        if case .addProvider = q.kind { return finish(id, .addProvider(result), ok: ok, now: now) }
        return finish(id, .putValue(result), ok: ok, now: now)
    }

    mutating func finish(_ id: DHT.QueryID, _ result: DHT.QueryResult, ok: Bool, now: Instant) -> [DHT.Directive] {
        guard var q = queries.removeValue(forKey: id) else { return [] }
        q.stats.finished = now
        if q.isInternal { return internalQueryFinished(id, q, result, now: now) }
        if ok { metrics.queriesSucceeded += 1 } else { metrics.queriesFailed += 1 }
        return [.queryFinished(id, result, q.stats)]
    }

    mutating func queryTimedOut(_ id: DHT.QueryID, now: Instant) -> [DHT.Directive] {
        guard var q = queries[id] else { return [] }
        switch q.phase {
        case .storing(_, let ok, _):
            return finishStore(id, success: ok, quorum: quorum(of: q), now: now)
        case .lookup:
            q.lookup.finish()
            queries[id] = q
            switch q.kind {
            case .putValue(_, let n), .addProvider(let n):
                // Store on whoever answered so far rather than giving up.
                _ = n
                return lookupFinished(id, now: now)
            case .getValue where q.best == nil:
                return finish(id, .getValue(.failure(.timeout)), ok: false, now: now)
            default:
                return lookupFinished(id, now: now)
            }
        }
    }
}
