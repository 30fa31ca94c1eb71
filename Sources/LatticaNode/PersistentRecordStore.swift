import Foundation
import LatticaCore
import LatticaDHT
import LatticaStore

/// The DHT record store persisted in SQLite: an in-memory `DHT.MemoryRecordStore` (which enforces
/// the limits: per-publisher counts and bytes, value size, providers per key) written through to
/// the `dht_records` and `dht_providers` tables, and reloaded from them at start. Expiry is kept
/// in Unix seconds on disk and converted to and from the loop's monotonic `Instant`.
struct PersistentRecordStore: DHT.RecordStore {
    var memory: DHT.MemoryRecordStore
    let db: Database
    /// Maps the loop clock to wall-clock time: wall = instant + offset.
    let offset: Double

    init(db: Database, localPeer: PeerId, now: Instant, limits: DHT.StoreLimits = .init()) {
        self.db = db
        self.memory = DHT.MemoryRecordStore(localPeer: localPeer, limits: limits)
        self.offset = wallClockSeconds() - now.seconds
        load(now: now)
    }

    private func unix(_ i: Instant) -> Double { i.seconds + offset }
    private func instant(_ u: Double) -> Instant { Instant(nanoseconds: Int64((u - offset) * 1e9)) }

    private mutating func load(now: Instant) {
        let wallNow = unix(now)
        try? db.query("DELETE FROM dht_records WHERE expires <= ?", [.double(wallNow)])
        try? db.query("DELETE FROM dht_providers WHERE expires <= ?", [.double(wallNow)])
        for r in (try? db.query("SELECT key, value, publisher, stored_by, expires, is_local FROM dht_records")) ?? [] {
            guard let key = r.blob(0), let value = r.blob(1), let by = r.blob(3).flatMap({ try? PeerId(multihash: $0) }) else { continue }
            let rec = DHT.Record(key: key, value: value, publisher: r.blob(2) ?? [])
            _ = memory.put(DHT.StoredRecord(record: rec, storedBy: by, expires: instant(r.double(4) ?? 0), isLocal: r.int(5) == 1), now: now)
        }
        for r in (try? db.query("SELECT key, provider, addrs, expires, is_local FROM dht_providers")) ?? [] {
            guard let key = r.blob(0), let p = r.blob(1).flatMap({ try? PeerId(multihash: $0) }) else { continue }
            let info = DHT.PeerInfo(id: p, addresses: PeerStore.unpack(r.blob(2) ?? []))
            _ = memory.addProvider(DHT.ProviderRecord(key: key, provider: info, expires: instant(r.double(3) ?? 0), isLocal: r.int(4) == 1), now: now)
        }
    }

    var recordCount: Int { memory.recordCount }

    func get(_ key: [UInt8], now: Instant) -> DHT.StoredRecord? { memory.get(key, now: now) }

    mutating func put(_ r: DHT.StoredRecord, now: Instant) -> DHT.RecordRejection? {
        if let rejected = memory.put(r, now: now) { return rejected }
        try? db.query("INSERT OR REPLACE INTO dht_records(key, value, publisher, stored_by, expires, is_local) VALUES (?,?,?,?,?,?)",
                      [.blob(r.record.key), .blob(r.record.value), .blob(r.record.publisher), .blob(r.storedBy.multihash),
                       .double(unix(r.expires)), .int(r.isLocal ? 1 : 0)])
        return nil
    }

    mutating func remove(_ key: [UInt8]) {
        memory.remove(key)
        try? db.query("DELETE FROM dht_records WHERE key = ?", [.blob(key)])
    }

    mutating func addProvider(_ p: DHT.ProviderRecord, now: Instant) -> DHT.RecordRejection? {
        if let rejected = memory.addProvider(p, now: now) { return rejected }
        try? db.query("INSERT OR REPLACE INTO dht_providers(key, provider, addrs, expires, is_local) VALUES (?,?,?,?,?)",
                      [.blob(p.key), .blob(p.provider.id.multihash), .blob(PeerStore.pack(p.provider.addresses)),
                       .double(unix(p.expires)), .int(p.isLocal ? 1 : 0)])
        return nil
    }

    func providers(for key: [UInt8], now: Instant) -> [DHT.ProviderRecord] { memory.providers(for: key, now: now) }

    mutating func removeExpired(now: Instant) -> Int {
        let n = memory.removeExpired(now: now)
        if n > 0 {
            try? db.query("DELETE FROM dht_records WHERE expires <= ?", [.double(unix(now))])
            try? db.query("DELETE FROM dht_providers WHERE expires <= ?", [.double(unix(now))])
        }
        return n
    }

    func localRecords() -> [DHT.StoredRecord] { memory.localRecords() }
    func localProviderKeys() -> [[UInt8]] { memory.localProviderKeys() }
}
