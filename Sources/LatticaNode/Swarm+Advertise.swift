import LatticaCore

extension Swarm {
    /// Stops routing inbound streams of `proto` and advertising it in identify (the DHT in client
    /// mode). Connections opened later do not offer it; open ones refuse it at the router.
    func unhandle(_ proto: String) {
        loop.assertInLoop()
        inbound.removeValue(forKey: proto)
    }

    /// Whether a service currently answers `proto`.
    func handles(_ proto: String) -> Bool { inbound[proto] != nil }
}
