import ArgumentParser
import Foundation
import LatticaAPI

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Decentralised training: start or join a run; the daemon averages with peers robustly.",
        subcommands: [Start.self, Join.self, Status.self, Stop.self]
    )

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a run (its config goes to the store) and join it.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("run"), help: "The run's name; its id is <this node's peer id>.<name>.") var runName: String
        @Option(help: "digits, breast-cancer, fashion-mnist, csv:PATH, idx:IMAGES,LABELS, or external:NAME for a trainer's own data.") var dataset = "digits"
        @Option(help: "mlp:HIDDEN-SIZES, e.g. mlp:64-32; ridge or ridge:KAPPA, softmax or softmax:L2 (method dadao); or external:NAME for a trainer's own model (no built-in trainer).") var model = "mlp:32"
        @Option(help: "robust (pull k − 1 peers, robust aggregation), noloco (pairs), diloco (mean of all members) or dadao (Poisson-clock gossip; --model ridge with --dataset breast-cancer, or softmax[:L2] with --dataset digits and --split; --rounds is the horizon in time units).") var method = "robust"
        @Option(help: "mean, median, trimmed-mean, krum, centered-clip or flag.") var aggregator = "centered-clip"
        @Option(name: .customLong("inner-steps"), help: "Inner steps H per outer step.") var innerSteps = 10
        @Option(help: "Outer learning rate α.") var alpha = 0.7
        @Option(help: "Outer momentum β.") var beta = 0.5
        @Option(name: .customLong("norm-bound"), help: "Scale deltas longer than this × the step's lower median delta norm down to it (0: off).") var normBound = 2.0
        @Option(help: "Models aggregated per outer step (ours and k − 1 pulled).") var k = 8
        @Option(help: "Outer steps (dadao: the horizon in time units).") var rounds = 60
        @Option(name: .customLong("time-unit-ms"), help: "dadao: milliseconds per DADAO time unit.") var timeUnitMs = 10
        @Option(help: "Seed of the data split and the initial model.") var seed = 1
        @Option(help: "iid or dirichlet:A.") var split = "dirichlet:0.5"
        @Option(help: "Shards the data set is split into (one per node).") var nodes = 8
        @Flag(inversion: .prefixedNo, help: "Weigh peers by reputation.") var reputation = true
        @Flag(name: .customLong("final-merge"), inversion: .prefixedNo, help: "At the end, merge every member's final model once.") var finalMerge = true
        @Option(help: "This node's shard, i/n.") var shard: String?
        @Flag(name: .customLong("no-trainer"), help: "Do not start the built-in trainer: your own trainer attaches (Docs/TRAINER-API.md).") var noTrainer = false

        func run() throws {
            let c = RunConfig(dataset: dataset, model: model, aggregator: aggregator, innerSteps: innerSteps, alpha: alpha, beta: beta,
                              k: k, rounds: rounds, seed: seed, split: split, nodes: nodes, reputation: reputation, method: method,
                              finalMerge: finalMerge, normBound: normBound, timeUnitMs: timeUnitMs)
            guard let r = try global.call(Methods.TrainStart.self, .init(name: runName, config: c, shard: shard ?? "0/\(nodes)",
                                                                         spawn: noTrainer || c.isExternalModel ? false : nil)) else { return }
            print("run \(r.run): joined with shard \(r.shard)" + (r.trainerPid.map { ", trainer pid \($0)" } ?? ""))
            print("others join with: lattica train join \(r.run) --shard I/\(nodes)")
        }
    }

    struct Join: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Join a run whose config reached this node.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The run id.") var runID: String
        @Option(help: "This node's shard, i/n.") var shard: String?
        @Flag(name: .customLong("no-trainer"), help: "Do not start the built-in trainer: your own trainer attaches (Docs/TRAINER-API.md).") var noTrainer = false
        func run() throws {
            guard let r = try global.call(Methods.TrainJoin.self, .init(run: runID, shard: shard, spawn: noTrainer ? false : nil)) else { return }
            print("run \(r.run): joined with shard \(r.shard)" + (r.trainerPid.map { ", trainer pid \($0)" } ?? ""))
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Step, loss, held-out accuracy, partners, bytes, rejected contributions, reputation.")
        @OptionGroup var global: GlobalOptions
        @Flag(help: "Refresh every second until interrupted.") var watch = false
        func run() throws {
            repeat {
                guard let s = try global.call(Methods.TrainStatus.self, NoParams()) else {
                    if watch { Thread.sleep(forTimeInterval: 1); continue } else { return }
                }
                if watch { print("\u{1B}[H\u{1B}[2J", terminator: "") }
                if s.runs.isEmpty { print("not training") }
                for r in s.runs { Self.show(r) }
                if watch { Thread.sleep(forTimeInterval: 1) }
            } while watch
        }

        static func show(_ r: TrainStatusResult.Run) {
            let width = 30, done = r.rounds > 0 ? min(width, width * r.step / r.rounds) : 0
            let bar = String(repeating: "█", count: done) + String(repeating: "░", count: width - done)
            print("run \(r.run)  shard \(r.shard)  trainer: \(r.trainer)" + (r.attack == "none" ? "" : "  ATTACKING: \(r.attack)"))
            print("\(bar) step \(r.step)/\(r.rounds)")
            printRows([
                ("loss", r.loss.map { String(format: "%.4f", $0) } ?? "-"),
                ("method", r.method ?? "robust"),
                ("held-out accuracy", r.accuracy.map { String(format: "%.2f%%", $0 * 100) } ?? "-"),
                ("final merge", r.merged == true ? "done" + (r.accuracyBeforeMerge.map { String(format: " (held-out accuracy before it %.2f%%)", $0 * 100) } ?? "") : "-"),
                ("partners", r.partners.isEmpty ? "-" : "\(r.partners.count): " + r.partners.map { String($0.suffix(8)) }.joined(separator: " ")),
                ("last outer step", r.lastOuterStepSeconds.map { formatDuration($0) + " ago" } ?? "never"),
                ("bytes in / out", "\(r.bytesIn) / \(r.bytesOut)"),
                ("rejected contributions", String(r.rejected)),
                ("members", String(r.members)),
            ])
            if !r.peers.isEmpty {
                var rows = [["PEER", "REPUTATION", "REJECTED"]]
                for p in r.peers { rows.append([p.peerId, String(format: "%.2f", p.reputation), String(p.rejected)]) }
                printTable(rows)
            }
        }
    }

    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop this node's trainer and leave the run.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The run id.") var runID: String
        func run() throws {
            guard let s = try global.call(Methods.TrainStop.self, .init(run: runID)) else { return }
            for r in s.runs { print("left \(r.run) at step \(r.step)") }
        }
    }
}
