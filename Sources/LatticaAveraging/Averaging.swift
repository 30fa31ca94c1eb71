public import LatticaCore

/// Decentralised averaging schedules (NoLoCo, robust NoLoCo, DiLoCo, plain gossip) as sans-I/O
/// instances: the shell (simulator or network) delivers messages and the round deadline, the
/// instance answers with directives. Parameters of the node's fast model θ go in at each outer
/// step; the new θ comes back as `.setParameters`. Spec: /work/shared/ALGORITHMS.md, NoLoCo.
public enum Averaging {
    public enum Method: Hashable, Sendable, CustomStringConvertible {
        /// No communication: the outer step only resets φ to θ.
        case localOnly
        /// DiLoCo: mean over all members (the all-reduce baseline).
        case diloco
        /// NoLoCo: partner from a permutation seeded by the outer step (group size 2).
        case noloco
        /// Plain gossip averaging: a random live partner, θ ← mean (α = 1, β = 0 by default).
        case gossip
        /// Robust NoLoCo: pull θ from k − 1 peers, aggregate the k deltas with `rule`.
        case robust(k: Int, rule: Aggregation.Rule)

        public var description: String {
            switch self {
            case .localOnly: "local only"
            case .diloco: "DiLoCo"
            case .noloco: "NoLoCo"
            case .gossip: "gossip"
            case .robust(let k, let rule): "k=\(k) + \(rule)"
            }
        }
    }

    public struct Settings: Hashable, Sendable {
        public var method: Method
        /// Outer learning rate α and momentum β (NoLoCo: 0.7, 0.5; DiLoCo: 0.7, 0.3).
        public var alpha: Float
        public var beta: Float
        /// Seed shared by the network: NoLoCo derives each outer step's pairing from it.
        public var networkSeed: UInt64 = 0
        /// Keep per-peer reputation and use it to pick and filter peers.
        public var useReputation = false
        public var reputation = Reputation.Settings()
        /// Norm bound before aggregating (nil = off): each delta longer than `normBound` × the lower
        /// median of the step's delta norms (own included) is scaled down to that length. The
        /// aggregate then never moves farther than the bound, whatever a minority sends; evidence
        /// is still computed from the deltas as sent.
        public var normBound: Double?
        /// Collusion guard (nil = off): contributions closer to an earlier one than this fraction
        /// of the lower median delta norm of the step count once (own delta first, then by peer).
        /// Honest nodes with their own data and seeds never send near-identical models; colluders
        /// who all send one crafted vector (or copy one honest model) otherwise get one vote each.
        public var mergeDuplicates: Double?
        /// Contributions whose delta ‖θ_j − φ‖ exceeds this are rejected as absurd.
        public var maxDeltaNorm: Double = 1e4
        /// The rule of the final merge (`Instance.finalMerge`): robust even when the steps average
        /// with the mean (NoLoCo pairs, DiLoCo). nil: the method's rule (the mean for non-robust ones).
        public var mergeRule: Aggregation.Rule?
        /// Time a shell waits for pulled models before finishing the step.

        public var roundTimeout: Duration = .seconds(30)

        public init(method: Method, alpha: Float? = nil, beta: Float? = nil) {
            self.method = method
            switch method {
            case .gossip, .localOnly: self.alpha = alpha ?? 1; self.beta = beta ?? 0
            case .diloco: self.alpha = alpha ?? 0.7; self.beta = beta ?? 0.3
            case .noloco, .robust: self.alpha = alpha ?? 0.7; self.beta = beta ?? 0.5
            }
        }
    }

    public enum Message: Sendable, Hashable {
        /// "Send me your θ for outer step `step`."
        case pull(step: Int)
        /// A node's θ at the end of the inner loop of `step`.
        case model(step: Int, parameters: [Float])
    }

    public enum Timer: Hashable, Sendable { case roundDeadline(step: Int) }

    public enum Directive: Sendable, Hashable {
        case send(Message, to: Int)
        case scheduleTimer(Timer, at: Instant)
        /// The outer step is done: continue the inner loop from these parameters.
        case setParameters([Float])
        case evidence(Evidence)
    }

    public struct Metrics: Hashable, Sendable {
        public var outerSteps = 0
        public var modelsReceived = 0
        public var rejected: [RejectReason: Int] = [:]
        public var fallbacks = 0
        public var farContributions = 0
        public var rejectedTotal: Int { rejected.values.reduce(0, +) }
    }
}
