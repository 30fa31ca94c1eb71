/// Per-directed-link transmission state (`busyUntil`, `lastArrival`) in an open-addressing table.
///
/// Only links with bandwidth or order-preserving jitter need state, and only while it can still
/// delay something (`busyUntil` or `lastArrival` after now). Expired entries are reused in place,
/// so a 10,000-node run with a million distinct links stays small and never hashes with SipHash.
@usableFromInline struct LinkTable {
    @usableFromInline struct Entry {
        @usableFromInline var key: UInt64  // `emptyKey` = never used
        @usableFromInline var busyUntil: Int64
        @usableFromInline var lastArrival: Int64

        @inlinable init(key: UInt64, busyUntil: Int64, lastArrival: Int64) {
            self.key = key; self.busyUntil = busyUntil; self.lastArrival = lastArrival
        }

        @inlinable func isExpired(_ now: Int64) -> Bool { busyUntil <= now && lastArrival <= now }
    }

    @usableFromInline static var emptyKey: UInt64 { .max }
    @usableFromInline var entries: [Entry]
    @usableFromInline var used = 0  // slots whose key is not empty (live or expired)

    @inlinable init() {
        entries = Array(repeating: Entry(key: Self.emptyKey, busyUntil: 0, lastArrival: 0), count: 1024)
    }

    @inlinable var count: Int { used }

    @inlinable @inline(__always)
    static func home(_ key: UInt64, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    /// The state of `key`, or a fresh one (idle since `now`).
    @inlinable
    func state(_ key: UInt64, now: Int64) -> (busyUntil: Int64, lastArrival: Int64) {
        let mask = entries.count - 1
        var i = Self.home(key, mask)
        while true {
            let e = entries[i]
            if e.key == key { return (Swift.max(e.busyUntil, now), Swift.max(e.lastArrival, now)) }
            if e.key == Self.emptyKey { return (now, now) }
            i = (i + 1) & mask
        }
    }

    @inlinable
    mutating func store(_ key: UInt64, busyUntil: Int64, lastArrival: Int64, now: Int64) {
        let mask = entries.count - 1
        var i = Self.home(key, mask)
        var reusable = -1
        while true {
            let e = entries[i]
            if e.key == key {
                entries[i].busyUntil = busyUntil
                entries[i].lastArrival = lastArrival
                return
            }
            if e.key == Self.emptyKey { break }
            if reusable < 0 && e.isExpired(now) { reusable = i }
            i = (i + 1) & mask
        }
        if reusable >= 0 {
            // The key is absent from the whole probe chain, so an expired slot on it can take it.
            entries[reusable] = Entry(key: key, busyUntil: busyUntil, lastArrival: lastArrival)
            return
        }
        entries[i] = Entry(key: key, busyUntil: busyUntil, lastArrival: lastArrival)
        used += 1
        if used * 2 > entries.count { rebuild(now: now) }
    }

    /// Drops expired entries; doubles the table when more than a quarter of it is live.
    @usableFromInline
    mutating func rebuild(now: Int64) {
        let live = entries.filter { $0.key != Self.emptyKey && !$0.isExpired(now) }
        var size = entries.count
        if live.count * 4 > size { size *= 2 }
        entries = Array(repeating: Entry(key: Self.emptyKey, busyUntil: 0, lastArrival: 0), count: size)
        used = 0
        let mask = size - 1
        for e in live {
            var i = Self.home(e.key, mask)
            while entries[i].key != Self.emptyKey { i = (i + 1) & mask }
            entries[i] = e
            used += 1
        }
    }
}
