/// What the node remembers about a peer across restarts (table `peers`).
public struct PeerRecord: Sendable, Equatable {
    /// base58btc peer id.
    public var peerId: String
    /// Binary multiaddrs.
    public var addrs: [[UInt8]]
    public var protocols: [String]
    public var agent: String
    public var rttMicros: Int64?
    /// Unix seconds.
    public var lastSeen: Int64
    public var failures: Int

    public init(peerId: String, addrs: [[UInt8]], protocols: [String] = [], agent: String = "",
                rttMicros: Int64? = nil, lastSeen: Int64, failures: Int = 0) {
        self.peerId = peerId; self.addrs = addrs; self.protocols = protocols; self.agent = agent
        self.rttMicros = rttMicros; self.lastSeen = lastSeen; self.failures = failures
    }
}

/// The persisted peer store, bounded: beyond `capacity` peers, the least recently seen are dropped.
public struct PeerStore: Sendable {
    public let db: Database
    public let capacity: Int

    public init(db: Database, capacity: Int = 10_000) {
        self.db = db
        self.capacity = capacity
    }

    public func upsert(_ p: PeerRecord) throws(StoreError) {
        try db.query("""
            INSERT INTO peers(peer_id, addrs, protocols, agent, rtt_us, last_seen, failures) VALUES(?,?,?,?,?,?,?)
            ON CONFLICT(peer_id) DO UPDATE SET addrs = excluded.addrs, protocols = excluded.protocols,
              agent = excluded.agent, rtt_us = excluded.rtt_us, last_seen = excluded.last_seen, failures = excluded.failures
            """, [.text(p.peerId), .blob(Self.pack(p.addrs)), .text(p.protocols.joined(separator: "\n")), .text(p.agent),
                  p.rttMicros.map { .int($0) } ?? .null, .int(p.lastSeen), .int(Int64(p.failures))])
        try db.query("""
            DELETE FROM peers WHERE peer_id IN
              (SELECT peer_id FROM peers ORDER BY last_seen DESC LIMIT -1 OFFSET ?)
            """, [.int(Int64(capacity))])
    }

    public func get(_ peerId: String) throws(StoreError) -> PeerRecord? {
        try db.query("SELECT peer_id, addrs, protocols, agent, rtt_us, last_seen, failures FROM peers WHERE peer_id = ?",
                     [.text(peerId)]).first.map(Self.record)
    }

    /// Most recently seen first.
    public func all(limit: Int = 1_000) throws(StoreError) -> [PeerRecord] {
        try db.query("SELECT peer_id, addrs, protocols, agent, rtt_us, last_seen, failures FROM peers ORDER BY last_seen DESC LIMIT ?",
                     [.int(Int64(limit))]).map(Self.record)
    }

    public func recordFailure(_ peerId: String) throws(StoreError) {
        try db.query("UPDATE peers SET failures = failures + 1 WHERE peer_id = ?", [.text(peerId)])
    }

    public func remove(_ peerId: String) throws(StoreError) {
        try db.query("DELETE FROM peers WHERE peer_id = ?", [.text(peerId)])
    }

    static func record(_ r: Row) -> PeerRecord {
        PeerRecord(peerId: r.text(0) ?? "", addrs: unpack(r.blob(1) ?? []),
                   protocols: (r.text(2) ?? "").split(separator: "\n").map(String.init), agent: r.text(3) ?? "",
                   rttMicros: r.int(4), lastSeen: r.int(5) ?? 0, failures: Int(r.int(6) ?? 0))
    }

    /// Each address as a 2-byte big-endian length and its bytes.
    public static func pack(_ addrs: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        for a in addrs where a.count <= 0xFFFF {
            out.append(UInt8(a.count >> 8)); out.append(UInt8(a.count & 0xFF)); out += a
        }
        return out
    }

    /// Tolerates a damaged blob: stops at the first inconsistent length.
    public static func unpack(_ b: [UInt8]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var i = 0
        while i + 2 <= b.count {
            let n = Int(b[i]) << 8 | Int(b[i + 1])
            guard i + 2 + n <= b.count else { break }
            out.append(Array(b[(i + 2)..<(i + 2 + n)]))
            i += 2 + n
        }
        return out
    }
}
