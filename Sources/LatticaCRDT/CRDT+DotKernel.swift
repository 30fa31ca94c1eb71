import LatticaCore

extension CRDT {
    /// The dot store shared by the OR-set and the multi-value register (Almeida, Shoker,
    /// Baquero, "Delta State Replicated Data Types", 2018, §7 "dot kernel"): live entries tagged
    /// by dots, and the causal context of every dot ever seen. An entry whose dot is in the
    /// other side's context but not among its entries was removed there.
    public struct DotKernel<Element: Hashable & Sendable>: Hashable, Sendable {
        public private(set) var entries: [Dot: Element] = [:]
        public private(set) var context = CausalContext()

        public init() {}

        /// A delta that adds `element` under `dot`, superseding `observed` dots.
        public static func delta(adding element: Element?, dot: Dot?, observed: some Sequence<Dot>) -> DotKernel {
            var d = DotKernel()
            for o in observed { d.context.insert(o) }
            if let dot, let element {
                d.entries[dot] = element
                d.context.insert(dot)
            }
            return d
        }

        /// The join. Commutative, associative and idempotent (property-tested).
        public mutating func merge(_ other: DotKernel) {
            // Entries we hold that the other side has seen and dropped: removed.
            if other.context.count <= UInt64(entries.count) {
                for d in other.context.allDots where entries[d] != nil && other.entries[d] == nil {
                    entries[d] = nil
                }
            } else {
                for d in entries.keys where other.context.contains(d) && other.entries[d] == nil {
                    entries[d] = nil
                }
            }
            // Entries of the other side we have not seen yet.
            for (d, e) in other.entries where entries[d] == nil && !context.contains(d) {
                entries[d] = e
            }
            context.formUnion(other.context)
        }

        /// Dots (in canonical order) whose entry satisfies `where`.
        public func dots(where predicate: (Element) -> Bool) -> [Dot] {
            entries.filter { predicate($0.value) }.map(\.key).sorted()
        }
    }

    /// Add-wins observed-remove set. A remove takes away only the adds it observed; an add
    /// concurrent with a remove survives it.
    public struct ORSet: Hashable, Sendable {
        public private(set) var kernel = DotKernel<Value>()
        public init() {}

        public var elements: [Value] { Set(kernel.entries.values).sorted() }
        public func contains(_ v: Value) -> Bool { kernel.entries.values.contains(v) }

        /// The delta of adding `v` under `dot` (it also retires our older dots for `v`).
        public func addDelta(_ v: Value, dot: Dot, maxObserved: Int = .max) -> ORSet {
            ORSet(kernel: .delta(adding: v, dot: dot, observed: kernel.dots { $0 == v }.prefix(maxObserved)))
        }

        /// The delta of removing `v` (every dot of it that we have observed).
        public func removeDelta(_ v: Value, maxObserved: Int = .max) -> ORSet {
            ORSet(kernel: .delta(adding: nil, dot: nil, observed: kernel.dots { $0 == v }.prefix(maxObserved)))
        }

        public mutating func merge(_ other: ORSet) { kernel.merge(other.kernel) }
        init(kernel: DotKernel<Value>) { self.kernel = kernel }
    }

    /// A register that keeps every concurrent write (and so shows conflicts); a write supersedes
    /// the values it observed.
    public struct MVRegister: Hashable, Sendable {
        public private(set) var kernel = DotKernel<Value>()
        public init() {}

        /// Concurrent values with the dot that wrote each, in dot order.
        public var values: [(dot: Dot, value: Value)] { kernel.entries.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }

        public func writeDelta(_ v: Value, dot: Dot, maxObserved: Int = .max) -> MVRegister {
            MVRegister(kernel: .delta(adding: v, dot: dot, observed: kernel.entries.keys.sorted().prefix(maxObserved)))
        }

        public mutating func merge(_ other: MVRegister) { kernel.merge(other.kernel) }
        init(kernel: DotKernel<Value>) { self.kernel = kernel }
    }
}
