import LatticaCore

/// NAT traversal as sans-I/O state machines and codecs: observed-address confirmation, AutoNAT v2,
/// STUN (RFC 8489) with RFC 5780 classification, Circuit Relay v2 and DCUtR. The node's services
/// (LatticaNode) run them against libuv; tests run them directly.
public enum NAT {
    /// Whether peers can dial us.
    public enum Reachability: String, Sendable, Equatable, CaseIterable {
        case unknown, `public`, `private`
    }

    /// RFC 4787 mapping or filtering behaviour of the NAT in front of us.
    public enum Behaviour: String, Sendable, Equatable, CaseIterable {
        case unknown
        /// No NAT: the mapped address is our own.
        case none
        case endpointIndependent = "endpoint-independent"
        case addressDependent = "address-dependent"
        case addressAndPortDependent = "address-and-port-dependent"
    }
}
