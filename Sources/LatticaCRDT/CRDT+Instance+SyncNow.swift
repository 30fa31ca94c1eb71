public import LatticaCore

extension CRDT.Instance {
    /// `lattica sync --now`: opens an anti-entropy exchange with every connected peer at once
    /// (the periodic timer asks `antiEntropyFanout` random ones).
    public mutating func syncNow(now: Instant) -> [Directive] {
        let digest = versionsDigest
        return connected.map { peer in
            metrics.antiEntropyExchanges += 1
            return send(.summary(digest: digest, wantsReply: true), to: peer)
        }
    }
}
