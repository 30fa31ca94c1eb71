import Foundation
import LatticaCore
import LatticaCrypto
@testable import LatticaCRDT

/// The seed of a randomised test: `LATTICA_CRDT_SEED` when set (to replay a failure), else `fallback`.
func testSeed(_ fallback: UInt64) -> UInt64 {
    ProcessInfo.processInfo.environment["LATTICA_CRDT_SEED"].flatMap { UInt64($0) } ?? fallback
}

/// A deterministic identity key drawn from `rng`.
func makeKey(_ rng: inout SeededRandom) -> Ed25519PrivateKey {
    try! Ed25519PrivateKey(seed: (0..<32).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
}

func makeSigner(_ rng: inout SeededRandom) -> CRDT.Signer { CRDT.Signer(key: makeKey(&rng)) }

let wall0 = CRDT.WallTime(milliseconds: 1_700_000_000_000)

extension SeededRandom {
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func chance(_ p: Double) -> Bool { nextDouble() < p }
    mutating func randomBytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }

    /// A valid encoding with a few bytes flipped, inserted, deleted or cut off.
    mutating func damaged(_ input: [UInt8]) -> [UInt8] {
        var b = input
        for _ in 0...below(3) {
            let at = b.isEmpty ? 0 : below(b.count)
            switch below(5) {
            case 0 where !b.isEmpty: b[at] ^= UInt8(1 << below(8))
            case 1: b.insert(UInt8(truncatingIfNeeded: next()), at: b.isEmpty ? 0 : below(b.count + 1))
            case 2 where !b.isEmpty: b.remove(at: at)
            case 3: b = Array(b.prefix(at))
            default: if !b.isEmpty { b[at] = 0xFF }
            }
        }
        return b
    }
}

/// Collects what directives say, for assertions.
struct Outcome {
    var sends: [(CRDT.Message, PeerId)] = []
    var persisted: [CRDT.Persist] = []
    var misbehaved: [(PeerId, CRDT.Misbehavior)] = []
    var applied: [CRDT.Applied] = []
    var timers: [(CRDT.TimerID, Instant)] = []

    init(_ ds: [CRDT.Directive]) {
        for d in ds {
            switch d {
            case .send(let m, let p): sends.append((m, p))
            case .persist(let p): persisted.append(p)
            case .peerMisbehaved(let p, let why): misbehaved.append((p, why))
            case .applied(let a): applied.append(a)
            case .scheduleTimer(let t, let at): timers.append((t, at))
            }
        }
    }
}
