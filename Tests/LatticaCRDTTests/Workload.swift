import LatticaCore
@testable import LatticaCRDT

/// Random writes to every namespace, as a node `me` may make them (the rules hold for `me`).
struct Workload {
    let runs: [CRDT.RunID]
    let peers: [PeerId]

    /// `creators`: the peers whose runs exist (each creates one run).
    init(creators: [PeerId], peers: [PeerId]) {
        runs = creators.enumerated().map { CRDT.RunID(creator: $1, name: "r\($0)") }
        self.peers = peers
    }

    static let values: [CRDT.Value] = [.string("alpha"), .string("beta"), .int(-7), .int(42), .bool(true), .bytes([0, 1, 2])]

    func randomWrite(_ rng: inout SeededRandom, me: PeerId) -> CRDT.Write {
        let v = Self.values[rng.below(Self.values.count)]
        let key = rng.below(4)
        let run = runs[rng.below(runs.count)]
        switch rng.below(12) {
        case 0: return .set("kv/reg/\(key)", v)
        case 1: return rng.chance(0.8) ? .mapSet("kv/map/\(key % 2)", key: "k\(rng.below(5))", v) : .mapRemove("kv/map/\(key % 2)", key: "k\(rng.below(5))")
        case 2: return rng.chance(0.6) ? .add("kv/set/\(key % 2)", v) : .remove("kv/set/\(key % 2)", v)
        case 3: return .increment("kv/count/\(key % 2)", by: Int64(rng.below(11)) - 3)
        case 4: return .multiValue("kv/mv/\(key % 2)", v)
        case 5:
            // A shared key written with a random kind: concurrent first uses of different kinds.
            switch rng.below(3) {
            case 0: return .set("kv/any/\(key % 2)", v)
            case 1: return .increment("kv/any/\(key % 2)", by: 1)
            default: return .add("kv/any/\(key % 2)", v)
            }
        case 6:
            let mine = runs.first { $0.creator == me }
            guard let mine else { return .join(run, as: me) }
            return .config(mine, ["model", "dataset", "aggregator", "lr"][key], v)
        case 7: return rng.chance(0.7) ? .join(run, as: me) : .leave(run, as: me)
        case 8:
            let c = CRDT.Checkpoint(contentHash: rng.randomBytes(32), step: UInt64(rng.below(1000)), metrics: ["loss": rng.nextDouble()])
            return .checkpoint(run, of: me, merged: rng.chance(0.2), c)
        case 9: return .progress(run, of: me, CRDT.Progress(step: UInt64(rng.below(10_000)), loss: rng.nextDouble(), samples: 64))
        case 10:
            let accused = peers[rng.below(peers.count)]
            return .report(run, by: me, against: accused, CRDT.Report(reason: "garbage-model", step: 3, evidence: [rng.randomBytes(32)]))
        default:
            return .withdrawReport(run, by: me, against: peers[rng.below(peers.count)])
        }
    }
}
