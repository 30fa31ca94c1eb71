/// What an honest node learnt about a peer's contribution in one outer step.
public struct Evidence: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        /// Rejected before touching the model.
        case rejected(RejectReason)
        /// Accepted; `ratio` = ‖Δ_peer − aggregate‖ / median over the step's contributions.
        case distance(ratio: Double, far: Bool)
    }
    public var peer: Int
    public var step: Int
    public var kind: Kind
    public init(peer: Int, step: Int, kind: Kind) { self.peer = peer; self.step = step; self.kind = kind }
}

public enum RejectReason: String, Hashable, Sendable {
    case wrongShape, nonFinite, absurdNorm, wrongStep, unsolicited
}

/// Per-peer reputation kept by one honest node: an exponential moving average of "was this
/// peer's contribution close to the robust aggregate" (1 = always, 0 = never). A single far round
/// costs `1 − decay` (never a ban); a peer repeatedly far out drops below `threshold` after about
/// log(threshold)/log(decay) rounds and is then deprioritised: pulled with weight `floorWeight`
/// and left out of the aggregate while enough trusted contributions remain. It recovers the same
/// way when its contributions come back close.
public struct Reputation: Hashable, Sendable {
    public struct Settings: Hashable, Sendable {
        /// A contribution is "far" when its distance to the aggregate exceeds this many times the
        /// median distance of the step's contributions.
        public var farFactor: Double = 1.5
        /// A contribution whose cosine with the aggregate is below this also counts as far.
        public var minCosine: Double = -0.5
        public var decay: Double = 0.75
        public var threshold: Double = 0.5
        public var floorWeight: Double = 0.02
        /// A rejected contribution (NaN, wrong shape, absurd norm) counts this many far rounds.
        public var rejectionPenalty: Int = 2
        public init() {}
    }

    public var settings: Settings
    public private(set) var scores: [Int: Double] = [:]
    public private(set) var farCounts: [Int: Int] = [:]

    public init(settings: Settings = Settings()) { self.settings = settings }

    public func score(_ peer: Int) -> Double { scores[peer] ?? 1 }
    public func isTrusted(_ peer: Int) -> Bool { score(peer) >= settings.threshold }

    /// Sampling weight of a peer when choosing whom to pull from.
    public func weight(_ peer: Int) -> Double { isTrusted(peer) ? score(peer) : settings.floorWeight }

    public mutating func record(_ e: Evidence) {
        switch e.kind {
        case .rejected:
            for _ in 0..<settings.rejectionPenalty { update(e.peer, good: false) }
        case .distance(_, let far):
            update(e.peer, good: !far)
        }
    }

    mutating func update(_ peer: Int, good: Bool) {
        scores[peer] = settings.decay * score(peer) + (1 - settings.decay) * (good ? 1 : 0)
        if !good { farCounts[peer, default: 0] += 1 }
    }
}
