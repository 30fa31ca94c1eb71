public import LatticaCore
import LatticaCrypto

extension CRDT {
    /// Per-author maximum contiguous sequence number: what a node has applied (anti-entropy
    /// summary, Docs/CRDT.md §5.4) and the compact part of a causal context.
    public struct VersionVector: Hashable, Sendable {
        public private(set) var seqs: [PeerId: UInt64] = [:]

        public init() {}
        public init(_ seqs: [PeerId: UInt64]) { self.seqs = seqs.filter { $0.value > 0 } }

        public subscript(author: PeerId) -> UInt64 {
            get { seqs[author] ?? 0 }
            set { seqs[author] = newValue == 0 ? nil : newValue }
        }

        public var authors: Int { seqs.count }
        /// Total number of deltas covered.
        public var total: UInt64 { seqs.values.reduce(0, &+) }
        /// Entries in canonical order (by author).
        public var sorted: [(author: PeerId, seq: UInt64)] { seqs.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }

        public mutating func formMax(_ other: VersionVector) {
            seqs.merge(other.seqs, uniquingKeysWith: max)
        }

        /// Deltas covered here but not in `other`.
        public func missing(from other: VersionVector) -> UInt64 {
            seqs.reduce(0) { $0 &+ ($1.value > other[$1.key] ? $1.value - other[$1.key] : 0) }
        }

        /// SHA-256 of the canonical encoding (the `summary` message).
        public var digest: [UInt8] {
            var w = ByteWriter()
            encode(into: &w)
            return SHA256.hash(w.bytes)
        }

        public func encode(into w: inout ByteWriter) {
            let entries = sorted
            w.count(entries.count)
            for e in entries { w.peer(e.author); w.uvarint(e.seq) }
        }

        /// Rejects more than `maxAuthors` entries before allocating, zero entries, unsorted or
        /// duplicate authors (so one vector has one encoding).
        public init(from r: inout ByteReader, maxAuthors: Int) throws(DecodeError) {
            let n = try r.count(max: maxAuthors, minElementBytes: 3, "version vector authors")
            var previous: PeerId?
            for _ in 0..<n {
                let author = try r.peer()
                let seq = try r.uvarint()
                guard seq > 0 else { throw .badValue("version vector seq 0") }
                if let previous, !(previous < author) { throw .badValue("version vector order") }
                previous = author
                seqs[author] = seq
            }
        }
    }

    /// A set of dots, stored as a version vector (every dot up to `vv[author]`) plus, per
    /// author, a cloud of seqs above it; kept compact (a cloud seq next to the vector moves into
    /// it), so one set of dots has one representation. Work per join is proportional to the
    /// other side's context, not to ours.
    public struct CausalContext: Hashable, Sendable {
        public private(set) var vv = VersionVector()
        var clouds: [PeerId: Set<UInt64>] = [:]

        public init() {}
        public init(dots: some Sequence<Dot>) { for d in dots { insert(d) } }

        public func contains(_ d: Dot) -> Bool { d.seq <= vv[d.author] || clouds[d.author]?.contains(d.seq) == true }

        /// The dots above the vector, in canonical order.
        public var cloud: [Dot] {
            clouds.flatMap { a, seqs in seqs.map { Dot(author: a, seq: $0) } }.sorted()
        }

        /// How many dots it holds (the vector's ranges count in full).
        public var count: UInt64 { clouds.values.reduce(vv.total) { $0 &+ UInt64($1.count) } }

        public mutating func insert(_ d: Dot) {
            let have = vv[d.author]
            guard d.seq > have else { return }
            if d.seq == have + 1 {
                vv[d.author] = d.seq
                compact(d.author)
            } else {
                clouds[d.author, default: []].insert(d.seq)
            }
        }

        /// Moves the author's cloud seqs next to the vector into it; `pruning` (after the vector
        /// jumped) also drops the seqs it now covers.
        mutating func compact(_ author: PeerId, pruning: Bool = false) {
            guard var seqs = clouds.removeValue(forKey: author) else { return }
            var n = vv[author]
            if pruning { seqs = seqs.filter { $0 > n } }
            while seqs.remove(n + 1) != nil { n += 1 }
            vv[author] = n
            if !seqs.isEmpty { clouds[author] = seqs }
        }

        public mutating func formUnion(_ other: CausalContext) {
            for (a, n) in other.vv.seqs where n > vv[a] {
                vv[a] = n
                compact(a, pruning: true)
            }
            for (a, seqs) in other.clouds {
                let have = vv[a]
                for s in seqs where s > have { clouds[a, default: []].insert(s) }
                compact(a)
            }
        }

        /// Every dot, expanded (the vector's ranges too); for small contexts only.
        public var allDots: [Dot] {
            var out = cloud
            for (a, n) in vv.seqs { for s in 1...n { out.append(Dot(author: a, seq: s)) } }
            return out
        }

        public func encode(into w: inout ByteWriter) {
            vv.encode(into: &w)
            let dots = cloud
            w.count(dots.count)
            for d in dots { w.peer(d.author); w.uvarint(d.seq) }
        }
    }
}
