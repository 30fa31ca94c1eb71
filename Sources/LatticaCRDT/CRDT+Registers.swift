public import LatticaCore

extension CRDT {
    /// Last-writer-wins register on HLC stamps, ties broken by author and then by value (so the
    /// join stays commutative even for a faulty author that reuses a stamp). `nil` is a tombstone.
    public struct LWWRegister: Hashable, Sendable {
        public private(set) var stamp: Stamp?
        public private(set) var value: Value?

        public init() {}
        public init(value: Value?, stamp: Stamp) { self.value = value; self.stamp = stamp }

        public mutating func merge(_ other: LWWRegister) {
            guard let theirs = other.stamp else { return }
            if let mine = stamp {
                if theirs < mine { return }
                if theirs == mine, !Self.valueLess(value, other.value) { return }
            }
            self = other
        }

        static func valueLess(_ a: Value?, _ b: Value?) -> Bool {
            switch (a, b) {
            case (nil, nil), (_, nil): false
            case (nil, _): true
            case (let x?, let y?): x < y
            }
        }
    }

    /// A map of last-writer-wins registers; removal writes a tombstone (kept, so that a late
    /// older write cannot resurrect the key).
    public struct LWWMap: Hashable, Sendable {
        public private(set) var registers: [String: LWWRegister] = [:]
        public init() {}

        public static func delta(key: String, value: Value?, stamp: Stamp) -> LWWMap {
            var m = LWWMap()
            m.registers[key] = LWWRegister(value: value, stamp: stamp)
            return m
        }

        /// Live entries (tombstones left out), by key.
        public var live: [(key: String, value: Value, stamp: Stamp)] {
            registers.compactMap { k, r in r.value.map { (k, $0, r.stamp!) } }.sorted { $0.key < $1.key }
        }

        public subscript(key: String) -> Value? { registers[key]?.value }

        public mutating func merge(_ other: LWWMap) {
            for (k, r) in other.registers { registers[k, default: LWWRegister()].merge(r) }
        }
    }

    /// Positive-negative counter: per author, the totals of its increments and decrements; the
    /// join is the per-author maximum. A delta carries only its author's new totals.
    public struct PNCounter: Hashable, Sendable {
        public struct Totals: Hashable, Sendable {
            public var p: UInt64
            public var n: UInt64
            public init(p: UInt64, n: UInt64) { self.p = p; self.n = n }
        }
        public private(set) var totals: [PeerId: Totals] = [:]
        public init() {}

        public var value: Int64 {
            var sum: UInt64 = 0
            for t in totals.values { sum = sum &+ t.p &- t.n }
            return Int64(bitPattern: sum)
        }

        /// The delta of `author` adding `amount` (negative: decrement), saturating at 2^63 - 1.
        public func addDelta(_ amount: Int64, author: PeerId) -> PNCounter {
            var t = totals[author] ?? Totals(p: 0, n: 0)
            let magnitude = amount.magnitude
            // Saturate at 2^63 - 1, the largest value a (multiformats) varint encodes.
            let cap = UInt64(Int64.max)
            if amount >= 0 { t.p = min(cap, min(t.p, cap) + min(magnitude, cap)) }
            else { t.n = min(cap, min(t.n, cap) + min(magnitude, cap)) }
            var d = PNCounter()
            d.totals[author] = t
            return d
        }

        public static func delta(author: PeerId, totals: Totals) -> PNCounter {
            var d = PNCounter()
            d.totals[author] = totals
            return d
        }

        public mutating func merge(_ other: PNCounter) {
            for (a, t) in other.totals {
                let mine = totals[a] ?? Totals(p: 0, n: 0)
                totals[a] = Totals(p: max(mine.p, t.p), n: max(mine.n, t.n))
            }
        }
    }
}
