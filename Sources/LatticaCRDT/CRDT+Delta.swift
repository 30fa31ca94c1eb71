public import LatticaCore

extension CRDT {
    /// The CRDT type of a path. `kv/…` paths take the kind of their first write; other
    /// namespaces fix it (Docs/CRDT.md §3).
    public enum Kind: UInt8, Hashable, Comparable, Sendable, CaseIterable {
        case register = 1, map = 2, set = 3, counter = 4, multiValue = 5
        public static func < (a: Kind, b: Kind) -> Bool { a.rawValue < b.rawValue }
    }

    /// What one delta does to the object at its path. Set and multi-value operations carry the
    /// dots they observed (and so supersede); the delta's own dot is (author, seq).
    public enum Op: Hashable, Sendable {
        /// LWW register: set the value.
        case register(Value)
        /// LWW map: set `key` to a value, or remove it (a tombstone).
        case mapSet(key: String, Value)
        case mapRemove(key: String)
        /// OR-set: add an element (retiring the observed dots of it), or remove the observed dots.
        case setAdd(Value, observed: [Dot])
        case setRemove(Value, observed: [Dot])
        /// PN-counter: the author's new totals of increments (`p`) and decrements (`n`).
        case counter(p: UInt64, n: UInt64)
        /// Multi-value register: write a value superseding the observed ones.
        case multiValue(Value, observed: [Dot])

        public var kind: Kind {
            switch self {
            case .register: .register
            case .mapSet, .mapRemove: .map
            case .setAdd, .setRemove: .set
            case .counter: .counter
            case .multiValue: .multiValue
            }
        }

        var tag: UInt8 {
            switch self {
            case .register: 1
            case .mapSet: 2
            case .mapRemove: 3
            case .setAdd: 4
            case .setRemove: 5
            case .counter: 6
            case .multiValue: 7
            }
        }

        /// The value it carries, if any (what the size limit and record-type checks look at).
        public var value: Value? {
            switch self {
            case .register(let v), .mapSet(_, let v), .setAdd(let v, _), .setRemove(let v, _), .multiValue(let v, _): v
            case .mapRemove, .counter: nil
            }
        }

        public var mapKey: String? {
            switch self {
            case .mapSet(let k, _), .mapRemove(let k): k
            default: nil
            }
        }

        /// An OR-set or multi-value operation: its dot and observed dots are part of the dot
        /// kernel's causal context (in the state and its hash), so compaction keeps it.
        public var isKernel: Bool { kind == .set || kind == .multiValue }

        public var observed: [Dot] {
            switch self {
            case .setAdd(_, let o), .setRemove(_, let o), .multiValue(_, let o): o
            default: []
            }
        }
    }

    /// One update: its sequence number in its author's stream (the author is the batch's),
    /// its hybrid-logical-clock time, the path and the operation.
    public struct Delta: Hashable, Sendable {
        public var seq: UInt64
        public var time: Timestamp
        public var path: String
        public var op: Op

        public init(seq: UInt64, time: Timestamp, path: String, op: Op) {
            self.seq = seq; self.time = time; self.path = path; self.op = op
        }
    }

    /// The materialised CRDT at one path.
    public enum Object: Hashable, Sendable {
        case register(LWWRegister)
        case map(LWWMap)
        case set(ORSet)
        case counter(PNCounter)
        case multiValue(MVRegister)

        public init(empty kind: Kind) {
            switch kind {
            case .register: self = .register(LWWRegister())
            case .map: self = .map(LWWMap())
            case .set: self = .set(ORSet())
            case .counter: self = .counter(PNCounter())
            case .multiValue: self = .multiValue(MVRegister())
            }
        }

        public var kind: Kind {
            switch self {
            case .register: .register
            case .map: .map
            case .set: .set
            case .counter: .counter
            case .multiValue: .multiValue
            }
        }

        /// Merges the delta-state of `op` (written by `author` as `seq` at `time`). An op of
        /// another kind is ignored (the caller keeps kinds apart). The payload is taken out of
        /// `self` first so that it is uniquely referenced and merges in place (no copy).
        public mutating func apply(_ op: Op, author: PeerId, seq: UInt64, time: Timestamp) {
            let dot = Dot(author: author, seq: seq)
            let stamp = Stamp(time: time, author: author)
            let placeholder = Object.register(LWWRegister())
            switch self {
            case .register(var r):
                guard case .register(let v) = op else { return }
                r.merge(LWWRegister(value: v, stamp: stamp)); self = .register(r)
            case .map(var m):
                guard let k = op.mapKey else { return }
                self = placeholder
                m.merge(.delta(key: k, value: op.value, stamp: stamp)); self = .map(m)
            case .set(var s):
                guard op.kind == .set else { return }
                self = placeholder
                let added: Value? = if case .setAdd(let v, _) = op { v } else { nil }
                s.merge(ORSet(kernel: .delta(adding: added, dot: added == nil ? nil : dot, observed: op.observed)))
                self = .set(s)
            case .counter(var c):
                guard case .counter(let p, let n) = op else { return }
                self = placeholder
                c.merge(.delta(author: author, totals: .init(p: p, n: n))); self = .counter(c)
            case .multiValue(var m):
                guard case .multiValue(let v, let observed) = op else { return }
                self = placeholder
                m.merge(MVRegister(kernel: .delta(adding: v, dot: dot, observed: observed))); self = .multiValue(m)
            }
        }
    }
}
