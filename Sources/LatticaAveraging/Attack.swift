public import LatticaCore

/// What a Byzantine node sends instead of its honest model (ALGORITHMS.md, "Attacks"). Delta-based
/// attacks are expressed relative to the receiver's slow weights φ_r, so the receiver sees
/// exactly the crafted delta; ALIE and IPM are omniscient (they know the honest models of the
/// step), the standard threat model in the papers.
public enum Attack: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case none
    /// −10 × own update.
    case signFlip = "sign-flip"
    /// N(0, 1) per coordinate as the update.
    case gaussian
    /// Trains on 9 − y, otherwise follows the protocol.
    case labelFlip = "label-flip"
    /// "A little is enough": mean − z·std of the honest models (z = 1), per coordinate.
    case alie = "ALIE"
    /// Inner-product manipulation: −0.1 × the honest mean update.
    case ipm = "IPM"
    /// Never trains; answers with its stale weights.
    case freeRider = "free-rider"

    public var description: String { rawValue }

    /// Whether the node trains on flipped labels.
    public var flipsLabels: Bool { self == .labelFlip }
    /// Whether the node runs its inner loop at all.
    public var trains: Bool { self != .freeRider }

    public struct Context {
        public var receiverSlow: [Float]
        public var ownUpdate: [Float]
        public var honestMean: [Float]
        public var honestStd: [Float]
        public init(receiverSlow: [Float], ownUpdate: [Float], honestMean: [Float], honestStd: [Float]) {
            self.receiverSlow = receiverSlow; self.ownUpdate = ownUpdate; self.honestMean = honestMean; self.honestStd = honestStd
        }
    }

    /// The model to send in place of the honest one, or nil to send the honest model.
    public func craft(_ c: Context, rng: inout SeededRandom) -> [Float]? {
        let n = c.receiverSlow.count
        switch self {
        case .none, .labelFlip, .freeRider: return nil
        case .signFlip:
            return (0..<n).map { c.receiverSlow[$0] - 10 * c.ownUpdate[$0] }
        case .gaussian:
            return (0..<n).map { c.receiverSlow[$0] + Float(rng.nextGaussian()) }
        case .alie:
            return (0..<n).map { c.honestMean[$0] - 1 * c.honestStd[$0] }
        case .ipm:
            return (0..<n).map { c.receiverSlow[$0] - 0.1 * (c.honestMean[$0] - c.receiverSlow[$0]) }
        }
    }
}
