import LatticaCore
import Testing
@testable import LatticaCRDT

/// A join-semilattice under test: `merge` must be commutative, associative and idempotent.
protocol Joinable: Equatable { static var bottom: Self { get } ; mutating func merge(_ other: Self) }
extension CRDT.LWWRegister: Joinable { static var bottom: Self { .init() } }
extension CRDT.LWWMap: Joinable { static var bottom: Self { .init() } }
extension CRDT.ORSet: Joinable { static var bottom: Self { .init() } }
extension CRDT.PNCounter: Joinable { static var bottom: Self { .init() } }
extension CRDT.MVRegister: Joinable { static var bottom: Self { .init() } }

func joined<T: Joinable>(_ a: T, _ b: T) -> T { var x = a; x.merge(b); return x }

/// Three replicas make random operations on their own state (and sometimes merge another's,
/// so that removes observe other authors' adds); every delta they produce is recorded.
struct Replicas<T: Joinable> {
    var states: [T] = [.bottom, .bottom, .bottom]
    var deltas: [T] = []
    var seqs: [UInt64] = [0, 0, 0]
    let authors: [PeerId]

    init(_ rng: inout SeededRandom) { authors = (0..<3).map { _ in makeSigner(&rng).peerId } }

    mutating func run(steps: Int, _ rng: inout SeededRandom, op: (T, PeerId, CRDT.Dot, CRDT.Stamp, inout SeededRandom) -> T) {
        for step in 0..<steps {
            let i = rng.below(3)
            if rng.chance(0.2) { states[i].merge(states[rng.below(3)]); continue }
            seqs[i] += 1
            let dot = CRDT.Dot(author: authors[i], seq: seqs[i])
            let stamp = CRDT.Stamp(time: CRDT.Timestamp(wall: UInt64(step / 3), logical: UInt32(rng.below(2))), author: authors[i])
            let d = op(states[i], authors[i], dot, stamp, &rng)
            states[i].merge(d)
            deltas.append(d)
        }
    }
}

@Suite struct MergePropertyTests {
    static let values: [CRDT.Value] = [.string("a"), .string("b"), .int(3), .bool(true), .bytes([1, 2])]

    /// Lattice laws on random states (joins of random subsets of the deltas), and: any order of
    /// the deltas, with duplicates, joins to the same state.
    func checkLaws<T: Joinable>(_ name: String, seed: UInt64, op: (T, PeerId, CRDT.Dot, CRDT.Stamp, inout SeededRandom) -> T) {
        var rng = SeededRandom(seed: seed)
        var replicas = Replicas<T>(&rng)
        replicas.run(steps: 120, &rng, op: op)
        let all = replicas.deltas
        func randomState(_ rng: inout SeededRandom) -> T {
            all.reduce(into: T.bottom) { s, d in if rng.chance(0.5) { s.merge(d) } }
        }
        for _ in 0..<40 {
            let a = randomState(&rng), b = randomState(&rng), c = randomState(&rng)
            #expect(joined(a, b) == joined(b, a), "\(name): commutativity, seed \(seed)")
            #expect(joined(joined(a, b), c) == joined(a, joined(b, c)), "\(name): associativity, seed \(seed)")
            #expect(joined(a, a) == a, "\(name): idempotence, seed \(seed)")
        }
        let reference = all.reduce(into: T.bottom) { $0.merge($1) }
        for _ in 0..<20 {
            var shuffled = all + all.filter { _ in rng.chance(0.3) }
            shuffled.shuffle(using: &rng)
            // Interleave: join two halves separately, then the halves.
            let cut = rng.below(shuffled.count + 1)
            let left = shuffled[..<cut].reduce(into: T.bottom) { $0.merge($1) }
            let right = shuffled[cut...].reduce(into: T.bottom) { $0.merge($1) }
            #expect(joined(left, right) == reference, "\(name): order/duplication independence, seed \(seed)")
        }
        #expect(all.count > 50)
    }

    @Test func test_lwwRegisterMerge_isCommutativeAssociativeIdempotent_underRandomOrders() {
        checkLaws("lww register", seed: testSeed(101)) { (_: CRDT.LWWRegister, _, _, stamp, rng) in
            CRDT.LWWRegister(value: Self.values[rng.below(Self.values.count)], stamp: stamp)
        }
    }

    @Test func test_lwwMapMerge_isCommutativeAssociativeIdempotent_underRandomOrders() {
        checkLaws("lww map", seed: testSeed(102)) { (_: CRDT.LWWMap, _, _, stamp, rng) in
            .delta(key: ["x", "y", "z"][rng.below(3)], value: rng.chance(0.3) ? nil : Self.values[rng.below(5)], stamp: stamp)
        }
    }

    @Test func test_orSetMerge_isCommutativeAssociativeIdempotent_underRandomOrders() {
        checkLaws("or-set", seed: testSeed(103)) { (s: CRDT.ORSet, _, dot, _, rng) in
            let v = Self.values[rng.below(3)]
            return rng.chance(0.6) ? s.addDelta(v, dot: dot) : s.removeDelta(v)
        }
    }

    @Test func test_pnCounterMerge_isCommutativeAssociativeIdempotent_underRandomOrders() {
        checkLaws("pn-counter", seed: testSeed(104)) { (c: CRDT.PNCounter, author, _, _, rng) in
            c.addDelta(Int64(rng.below(21)) - 10, author: author)
        }
    }

    @Test func test_multiValueRegisterMerge_isCommutativeAssociativeIdempotent_underRandomOrders() {
        checkLaws("mv register", seed: testSeed(105)) { (m: CRDT.MVRegister, _, dot, _, rng) in
            m.writeDelta(Self.values[rng.below(5)], dot: dot)
        }
    }

    @Test func test_orSet_addWins_overAConcurrentRemove() {
        var rng = SeededRandom(seed: 7)
        let a = makeSigner(&rng).peerId, b = makeSigner(&rng).peerId
        var base = CRDT.ORSet()
        base.merge(base.addDelta(.string("e"), dot: .init(author: a, seq: 1)))
        let remove = base.removeDelta(.string("e"))               // b removes what it saw
        let readd = base.addDelta(.string("e"), dot: .init(author: a, seq: 2))  // a adds again, concurrently
        var x = base; x.merge(remove); x.merge(readd)
        var y = base; y.merge(readd); y.merge(remove)
        #expect(x == y)
        #expect(x.elements == [.string("e")])
        var z = base; z.merge(remove)
        #expect(z.elements.isEmpty)
        _ = b
    }

    @Test func test_orSet_removeBeforeItsAdd_stillRemovesIt() {
        var rng = SeededRandom(seed: 8)
        let a = makeSigner(&rng).peerId
        let add = CRDT.ORSet().addDelta(.int(1), dot: .init(author: a, seq: 5))
        let remove = add.removeDelta(.int(1))
        var s = CRDT.ORSet()
        s.merge(remove)
        s.merge(add)
        #expect(s.elements.isEmpty)
    }

    @Test func test_multiValueRegister_showsConcurrentWrites_andAWriteSupersedesWhatItSaw() {
        var rng = SeededRandom(seed: 9)
        let a = makeSigner(&rng).peerId, b = makeSigner(&rng).peerId
        let empty = CRDT.MVRegister()
        var s = empty
        s.merge(empty.writeDelta(.string("x"), dot: .init(author: a, seq: 1)))
        s.merge(empty.writeDelta(.string("y"), dot: .init(author: b, seq: 1)))
        #expect(s.values.map(\.value).sorted() == [.string("x"), .string("y")])
        s.merge(s.writeDelta(.string("z"), dot: .init(author: a, seq: 2)))
        #expect(s.values.map(\.value) == [.string("z")])
    }

    @Test func test_lwwRegister_tieOnTime_isBrokenByAuthor() {
        var rng = SeededRandom(seed: 10)
        let p = makeSigner(&rng).peerId, q = makeSigner(&rng).peerId
        let (lo, hi) = p < q ? (p, q) : (q, p)
        let t = CRDT.Timestamp(wall: 5)
        var r = CRDT.LWWRegister(value: .int(2), stamp: .init(time: t, author: hi))
        r.merge(CRDT.LWWRegister(value: .int(1), stamp: .init(time: t, author: lo)))
        #expect(r.value == .int(2))
    }

    @Test func test_hybridClock_isMonotonic_whenTheWallClockStallsOrGoesBack() {
        var c = CRDT.HybridClock()
        let a = c.tick(wall: .init(milliseconds: 100))
        let b = c.tick(wall: .init(milliseconds: 100))
        let d = c.tick(wall: .init(milliseconds: 90))
        c.observe(CRDT.Timestamp(wall: 500, logical: 7))
        let e = c.tick(wall: .init(milliseconds: 200))
        #expect(a < b && b < d && d < e)
        #expect(e == CRDT.Timestamp(wall: 500, logical: 8))
        #expect(c.tick(wall: .init(milliseconds: 600)) == CRDT.Timestamp(wall: 600))
    }
}
