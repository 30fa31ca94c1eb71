public import LatticaCore
import LatticaCrypto

extension CRDT {
    /// The materialised state: the CRDT object at every path. Deltas are applied by merging;
    /// the result does not depend on the order they arrive in (property-tested).
    ///
    /// Typed by first use (`kv/…`): a path holds one object per kind that was ever written to it,
    /// and the visible one is the kind whose earliest write has the smallest stamp. Rejecting a
    /// remote write of "the wrong type" instead would depend on what arrived first, and nodes
    /// would diverge; this way every node shows the same kind, and local writes of another kind
    /// are refused (`WriteError.typeMismatch`).
    public struct State: Hashable, Sendable {
        public struct Variant: Hashable, Sendable {
            /// The smallest stamp of any write of this kind to the path.
            public var first: Stamp
            public var object: Object
        }

        public struct Entry: Hashable, Sendable {
            /// Sorted by `first`; `variants[0]` is visible.
            public internal(set) var variants: [Variant] = []
            public var visible: Object { variants[0].object }

            /// Returns true when the path now holds more than one kind (a type conflict).
            mutating func apply(_ d: Delta, author: PeerId) -> Bool {
                let kind = d.op.kind
                let stamp = Stamp(time: d.time, author: author)
                let i: Int
                if let j = variants.firstIndex(where: { $0.object.kind == kind }) {
                    i = j
                    if stamp < variants[i].first { variants[i].first = stamp }
                } else {
                    variants.append(Variant(first: stamp, object: Object(empty: kind)))
                    i = variants.count - 1
                }
                variants[i].object.apply(d.op, author: author, seq: d.seq, time: d.time)
                guard variants.count > 1 else { return false }
                variants.sort { $0.first < $1.first }
                return true
            }
        }

        public private(set) var entries: [String: Entry] = [:]
        public init() {}

        /// Applies one delta of `author`; true when it made a type conflict at a `kv/` path.
        @discardableResult
        public mutating func apply(_ d: Delta, author: PeerId) -> Bool {
            entries[d.path, default: Entry()].apply(d, author: author)
        }

        /// The visible object at `path`.
        public func object(at path: String) -> Object? { entries[path]?.visible }
        public func kind(at path: String) -> Kind? { entries[path]?.visible.kind }

        /// Paths in canonical (byte) order, optionally under a prefix.
        public func paths(prefix: String = "") -> [String] {
            entries.keys.filter { $0.hasPrefix(prefix) }.sorted()
        }

        /// SHA-256 of the canonical encoding of every entry, paths in byte order (Docs/CRDT.md §4).
        /// Equal on two nodes exactly when their materialised states are equal.
        public var stateHash: [UInt8] {
            var h = SHA256.Hasher()
            h.update(Array("lattica-crdt-state-v1".utf8))
            var w = ByteWriter()
            w.count(entries.count)
            h.update(w.bytes)
            for path in entries.keys.sorted() {
                h.update(encodedEntry(path)!)
            }
            return h.finalize()
        }

        /// The canonical encoding of one path's entry (what the shell stores as its materialised
        /// row): path ‖ variant count ‖ (first stamp ‖ object)…
        public func encodedEntry(_ path: String) -> [UInt8]? {
            guard let e = entries[path] else { return nil }
            var w = ByteWriter()
            w.string(path)
            w.count(e.variants.count)
            for v in e.variants {
                v.first.encode(into: &w)
                v.object.encode(into: &w)
            }
            return w.bytes
        }
    }
}

extension CRDT.Stamp {
    public func encode(into w: inout CRDT.ByteWriter) {
        w.uvarint(time.wall)
        w.uvarint(UInt64(time.logical))
        w.peer(author)
    }
}

extension CRDT.Object {
    /// Canonical: kind byte, then the object with every collection sorted (Docs/CRDT.md §4).
    public func encode(into w: inout CRDT.ByteWriter) {
        w.u8(kind.rawValue)
        switch self {
        case .register(let r):
            Self.encode(r, into: &w)
        case .map(let m):
            let keys = m.registers.keys.sorted()
            w.count(keys.count)
            for k in keys { w.string(k); Self.encode(m.registers[k]!, into: &w) }
        case .set(let s):
            Self.encode(s.kernel, into: &w)
        case .counter(let c):
            let authors = c.totals.keys.sorted()
            w.count(authors.count)
            for a in authors { w.peer(a); w.uvarint(c.totals[a]!.p); w.uvarint(c.totals[a]!.n) }
        case .multiValue(let m):
            Self.encode(m.kernel, into: &w)
        }
    }

    static func encode(_ r: CRDT.LWWRegister, into w: inout CRDT.ByteWriter) {
        guard let stamp = r.stamp else { w.u8(0); return }
        w.u8(r.value == nil ? 1 : 2)
        stamp.encode(into: &w)
        r.value?.encode(into: &w)
    }

    static func encode(_ k: CRDT.DotKernel<CRDT.Value>, into w: inout CRDT.ByteWriter) {
        let dots = k.entries.keys.sorted()
        w.count(dots.count)
        for d in dots { d.encode(into: &w); k.entries[d]!.encode(into: &w) }
        k.context.encode(into: &w)
    }
}
