import LatticaCore
import LatticaData
import LatticaLearning
import LatticaSimulation
import Testing

/// The averaging instances over the simulator's network: latency, a crashed partner, timers.
struct TrainingNode: SimProcess {
    typealias Message = Averaging.Message
    var trainer: LocalTrainer
    var averaging: Averaging.Instance
    var theta: [Float]
    let members: [Int]
    var step = 0
    static let round = Duration.seconds(10), patience = Duration.seconds(1), deadline = Duration.seconds(5)

    mutating func onStart(_ ctx: inout SimContext<Message>) { ctx.setTimer(1, after: Self.round) }

    mutating func apply(_ ds: [Averaging.Directive], _ ctx: inout SimContext<Message>) {
        for d in ds {
            switch d {
            case .send(let m, let to): ctx.send(m, to: SimNodeID(to), bytes: 4 * theta.count)
            case .setParameters(let p): theta = p
            case .scheduleTimer, .evidence: break  // deadline armed below; evidence unused here
            }
        }
    }

    mutating func onMessage(_ m: Message, from: SimNodeID, _ ctx: inout SimContext<Message>) {
        apply(averaging.onMessage(m, from: from.raw, now: ctx.now), &ctx)
    }

    mutating func onTimer(_ id: UInt64, _ ctx: inout SimContext<Message>) {
        switch id {
        case 1:
            trainer.train(&theta, steps: 10)
            apply(averaging.onOuterStep(step: step, parameters: theta, members: members, now: ctx.now), &ctx)
            step += 1
            ctx.setTimer(2, after: Self.patience)
            ctx.setTimer(3, after: Self.deadline)
            ctx.setTimer(1, after: Self.round)
        case 2:
            for p in averaging.missingContributions { apply(averaging.onPeerUnreachable(p, now: ctx.now), &ctx) }
        default:
            apply(averaging.finishStep(now: ctx.now), &ctx)
        }
    }
}

@Suite struct SimulatedNetworkTests {
    init() { _ = BLASSetup.installed }  // OpenBLAS, as the trainer uses (latticad keeps the portable loops)
    static func run(seed: UInt64) -> (accuracy: Double, fallbacks: Int, digest: UInt64) {
        let data = try! DataFiles.fixture("digits").scaled(by: 1.0 / 16)
        let (train, test) = data.trainTestSplit(testFraction: 0.25, seed: seed)
        let n = 8
        let arch = MLPArchitecture(sizes: [64, 32, 10])
        var rng = SeededRandom(seed: seed)
        let initial = arch.initialParameters(rng: &rng)
        let parts = DataSplit.dirichlet(alpha: 0.5).assign(train, nodes: n, seed: seed)
        var sim = Simulation<TrainingNode>(seed: seed, link: LinkModel(latency: .milliseconds(50)))
        var settings = Averaging.Settings(method: .noloco)
        settings.networkSeed = seed
        for k in 0..<n {
            _ = sim.addNode(TrainingNode(
                trainer: LocalTrainer(architecture: arch, data: train.subset(parts[k]), seed: rng.next()),
                averaging: Averaging.Instance(me: k, initial: initial, settings: settings, seed: rng.next()),
                theta: initial, members: Array(0..<n)))
        }
        sim.schedule(at: .zero + .seconds(55)) { $0.crash(SimNodeID(3)) }
        sim.run(until: .zero + .seconds(305))
        var ws = MLPWorkspace(arch, maxBatch: 512)
        let live = (0..<n).filter { $0 != 3 }
        let acc = live.map { arch.accuracy(parameters: sim[SimNodeID($0)].theta, on: test, workspace: &ws) }.reduce(0, +) / Double(live.count)
        let fallbacks = live.map { sim[SimNodeID($0)].averaging.metrics.fallbacks }.reduce(0, +)
        return (acc, fallbacks, sim.digest)
    }

    @Test func noloco_overASimulatedNetwork_learns_andFallsBackWhenAPartnerCrashes() {
        let a = Self.run(seed: 5)
        #expect(a.accuracy >= 0.8, "accuracy \(a.accuracy)")
        #expect(a.fallbacks >= 10, "fallbacks \(a.fallbacks)")  // the crashed node's partners, 25 rounds
        let b = Self.run(seed: 5)
        #expect(a.digest == b.digest && a.accuracy == b.accuracy)
    }
}
