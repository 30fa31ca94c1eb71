import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import LatticaCore
import LatticaDHT
import LatticaStore

/// The DHT's records and providers in SQLite (`dht_records`, `dht_providers`). The DHT instance
/// keeps its store in memory and reports every change as a `.persist` directive; the DHT service
/// writes it here. At start the rows become the instance's initial store. Expiry is kept in Unix
/// seconds on disk and converted to and from the loop's monotonic `Instant`.
struct DHTRecordPersistence {
    let db: Database
    /// Maps the loop clock to wall-clock time: wall = instant + offset.
    let offset: Double

    init(db: Database, now: Instant) {
        self.db = db
        self.offset = wallClockSeconds() - now.seconds
    }

    private func unix(_ i: Instant) -> Double { i.seconds + offset }
    private func instant(_ u: Double) -> Instant { Instant(nanoseconds: Int64((u - offset) * 1e9)) }

    /// The stored records and providers that have not expired, as an in-memory store (which
    /// enforces the limits again: rows over a limit are not loaded).
    func load(localPeer: PeerId, now: Instant, limits: DHT.StoreLimits = .init()) throws(StoreError) -> DHT.MemoryRecordStore {
        var memory = DHT.MemoryRecordStore(localPeer: localPeer, limits: limits)
        try apply(.removeExpired(now: now))
        for r in try db.query("SELECT key, value, publisher, stored_by, expires, is_local FROM dht_records") {
            guard let key = r.blob(0), let value = r.blob(1), let by = r.blob(3).flatMap({ try? PeerId(multihash: $0) }) else { continue }
            let rec = DHT.Record(key: key, value: value, publisher: r.blob(2) ?? [])
            _ = memory.put(DHT.StoredRecord(record: rec, storedBy: by, expires: instant(r.double(4) ?? 0), isLocal: r.int(5) == 1), now: now)
        }
        for r in try db.query("SELECT key, provider, addrs, expires, is_local FROM dht_providers") {
            guard let key = r.blob(0), let p = r.blob(1).flatMap({ try? PeerId(multihash: $0) }) else { continue }
            let info = DHT.PeerInfo(id: p, addresses: PeerStore.unpack(r.blob(2) ?? []))
            _ = memory.addProvider(DHT.ProviderRecord(key: key, provider: info, expires: instant(r.double(3) ?? 0), isLocal: r.int(4) == 1), now: now)
        }
        return memory
    }

    /// Writes one change of the instance's store.
    func apply(_ change: DHT.StoreChange) throws(StoreError) {
        switch change {
        case .putRecord(let r):
            _ = try db.query("INSERT OR REPLACE INTO dht_records(key, value, publisher, stored_by, expires, is_local) VALUES (?,?,?,?,?,?)",
                             [.blob(r.record.key), .blob(r.record.value), .blob(r.record.publisher), .blob(r.storedBy.multihash),
                              .double(unix(r.expires)), .int(r.isLocal ? 1 : 0)])
        case .putProvider(let p):
            _ = try db.query("INSERT OR REPLACE INTO dht_providers(key, provider, addrs, expires, is_local) VALUES (?,?,?,?,?)",
                             [.blob(p.key), .blob(p.provider.id.multihash), .blob(PeerStore.pack(p.provider.addresses)),
                              .double(unix(p.expires)), .int(p.isLocal ? 1 : 0)])
        case .removeExpired(let now):
            try db.transaction { () throws(StoreError) in
                _ = try db.query("DELETE FROM dht_records WHERE expires <= ?", [.double(unix(now))])
                _ = try db.query("DELETE FROM dht_providers WHERE expires <= ?", [.double(unix(now))])
            }
        }
    }
}
