public import LatticaCore

extension DHT.Instance {
    /// Starts (or restarts) the bootstrap: a self lookup seeded with the routing table and the
    /// configured bootstrap peers (kad-dht spec "Bootstrap process").
    public mutating func bootstrap(now: Instant) -> [DHT.Directive] {
        if let q = bootstrapQuery, queries[q] != nil { return [] }
        if routingTable.count == 0 && settings.bootstrapPeers.isEmpty {
            return bootstrapFailed(now: now)
        }
        let (id, out) = startQuery(.bootstrap, key: localPeer.multihash, extraSeeds: settings.bootstrapPeers, now: now)
        bootstrapQuery = queries[id] == nil ? nil : id
        return out
    }

    mutating func bootstrapFailed(now: Instant) -> [DHT.Directive] {
        bootstrapAttempt += 1
        metrics.bootstrapFailures += 1
        let base = settings.bootstrapBackoffInitial.nanosecondsClamped
        let exp = min(bootstrapAttempt - 1, 30)
        var delay = min(base &* (Int64(1) << Int64(exp)), settings.bootstrapBackoffMax.nanosecondsClamped)
        delay += Int64(Double(delay) * 0.2 * rng.nextDouble())  // jitter so a fleet does not retry in lockstep
        let at = now + .nanoseconds(delay)
        return [.bootstrap(.noBootstrapPeerReachable(attempt: bootstrapAttempt, retryAt: at)), .scheduleTimer(.bootstrapRetry, at: at)]
    }

    mutating func internalQueryFinished(_ id: DHT.QueryID, _ q: Query, _ result: DHT.QueryResult, now: Instant) -> [DHT.Directive] {
        guard case .bootstrap = q.kind else { return [] }
        if bootstrapQuery == id { bootstrapQuery = nil }
        if q.stats.successes == 0 {
            return bootstrapFailed(now: now)
        }
        bootstrapAttempt = 0
        return [.bootstrap(.bootstrapped(routingTableSize: routingTable.count)), .scheduleTimer(.refresh, at: now + settings.refreshInterval)]
    }

    /// Periodic refresh: self lookup (re-seeded with bootstrap peers, so a healed partition is
    /// rediscovered) plus a random lookup into each stale shallow bucket.
    mutating func refresh(now: Instant) -> [DHT.Directive] {
        var out = bootstrap(now: now)
        if out.isEmpty, bootstrapQuery != nil {}  // a bootstrap is already running; it reschedules refresh
        let stale = routingTable.staleBuckets(before: now - settings.refreshInterval).filter { $0 <= settings.refreshMaxBucket }
        for b in stale {
            if let key = randomKey(inBucket: b) {
                out += startQuery(.refresh, key: key, now: now).1
            }
        }
        return out
    }

    /// A random sha2-256 PeerId-shaped key whose Kademlia key falls in bucket `b` (ground by trial).
    mutating func randomKey(inBucket b: Int) -> [UInt8]? {
        let tries = min(1 << (b + 4), 1 << 14)
        for _ in 0..<tries {
            var id: [UInt8] = [0x12, 0x20]
            for _ in 0..<4 { let r = rng.next(); for j in 0..<8 { id.append(UInt8(truncatingIfNeeded: r >> (8 * UInt64(j)))) } }
            if routingTable.bucketIndex(of: DHT.Key(hashing: id)) == b { return id }
        }
        return nil
    }

    /// Expiry and republishing.
    mutating func maintenance(now: Instant) -> [DHT.Directive] {
        let expired = store.removeExpired(now: now)
        writeTokens = writeTokens.filter { (now - $0.value.at) < .seconds(600) }
        var out: [DHT.Directive] = [.scheduleTimer(.maintenance, at: now + settings.maintenanceInterval)]
        if expired > 0 { out.append(.persist(.removeExpired(now: now))) }
        for r in store.localRecords() {
            let last = lastPublished[r.record.key] ?? .zero
            if now - last >= settings.recordRepublishInterval {
                out += putValue(r.record.key, value: r.record.value, now: now).1
            }
        }
        for key in store.localProviderKeys() {
            let last = lastProvided[key] ?? .zero
            if now - last >= settings.providerRepublishInterval {
                out += provide(key, now: now).1
            }
        }
        return out
    }
}
