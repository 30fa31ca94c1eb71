import LatticaCore

extension AutoNAT {
    public typealias Endpoint = NAT.Endpoint

    /// What a server accepts to dial (`[autonat]` config).
    public struct ServerSettings: Sendable {
        /// Dial private, loopback and link-local addresses (test nets, LANs). The spec says a
        /// server SHOULD NOT; off by default.
        public var allowPrivateAddrs = false
        /// The amplification guard: bytes a client pays to have an IP other than its own dialled.
        public var dialDataMin: UInt64 = 30_000
        public var dialDataMax: UInt64 = 100_000
        public init() {}
    }

    /// Why a server refused (`lattica_autonat_rejected_total{reason}`).
    public enum Refusal: String, Sendable, CaseIterable {
        case decode
        case unexpected
        /// The requester reached us through a relay: we do not know its IP.
        case relayed
        /// No address we are willing to dial (private, unsupported, malformed).
        case noDialableAddr = "no_dialable_addr"
        /// The requester would not pay for a third-party IP (reset or closed the stream).
        case unpaid
        case perPeerLimit = "per_peer_limit"
        case totalLimit = "total_limit"
    }

    /// The server side of one `/libp2p/autonat/2/dial-request` stream: the request, the
    /// amplification guard (a dial to an IP other than the requester's observed one only after it
    /// sent `numBytes` of DialDataResponse), then exactly one dial. Pure.
    public struct ServerSession: Sendable {
        public enum Action: Equatable, Sendable {
            /// Answer and close: the response to write.
            case respond(DialResponse, refusal: Refusal?)
            /// Ask for dial data (write the DialDataRequest) and wait.
            case requestData(Message)
            /// Dial `addr` and send `nonce` on the dial-back stream; report with `onDialed`.
            case dial(Endpoint, nonce: UInt64, addrIdx: UInt32)
            /// Keep reading.
            case none
        }

        enum State: Equatable { case awaitingRequest, awaitingData(need: UInt64, got: UInt64), dialing, done }

        public let settings: ServerSettings
        /// The requester's IP and port as this connection sees it; nil for a relayed connection.
        public let observed: Endpoint?
        var state = State.awaitingRequest
        var chosen: (Endpoint, UInt32, UInt64)?

        public init(settings: ServerSettings, observed: Endpoint?) {
            self.settings = settings
            self.observed = observed
        }

        /// The first address of the request we are willing to dial, with its index.
        public static func select(_ addrs: [[UInt8]], settings: ServerSettings) -> (Endpoint, UInt32)? {
            for (i, raw) in addrs.enumerated() {
                guard let ma = try? Multiaddr(bytes: raw), !ma.natIsRelayed else { continue }
                // Only `/ipX/…/tcp/…` with at most a trailing `/p2p/…`: what we can dial.
                let rest = ma.components.dropFirst(2)
                guard rest.isEmpty || (rest.count == 1 && ma.peerId != nil) else { continue }
                guard let e = Endpoint(multiaddr: ma), e.port != 0, !e.isUnspecified, !e.isMulticast else { continue }
                if !settings.allowPrivateAddrs, !e.isPublic { continue }
                return (e, UInt32(i))
            }
            return nil
        }

        public mutating func onMessage(_ m: Message, rng: inout SeededRandom) -> Action {
            switch (state, m) {
            case (.awaitingRequest, .dialRequest(let r)):
                guard let observed else { return refuse(.requestRejected, .relayed) }
                guard let (e, idx) = Self.select(r.addrs, settings: settings) else { return refuse(.dialRefused, .noDialableAddr) }
                chosen = (e, idx, r.nonce)
                if e.ip == observed.ip {
                    state = .dialing
                    return .dial(e, nonce: r.nonce, addrIdx: idx)
                }
                let span = settings.dialDataMax >= settings.dialDataMin ? settings.dialDataMax - settings.dialDataMin : 0
                let need = settings.dialDataMin + (span == 0 ? 0 : rng.next() % (span + 1))
                state = .awaitingData(need: need, got: 0)
                return .requestData(.dialDataRequest(addrIdx: idx, numBytes: need))
            case (.awaitingData(let need, let got), .dialDataResponse(let n)):
                let total = got + UInt64(n)
                guard total >= need, let (e, idx, nonce) = chosen else {
                    state = .awaitingData(need: need, got: total)
                    return .none
                }
                state = .dialing
                return .dial(e, nonce: nonce, addrIdx: idx)
            case (.done, _):
                return .none
            default:
                return refuse(.internalError, .unexpected)
            }
        }

        /// The stream ended (reset, closed) before we dialled: a third-party dial that was not paid
        /// for is never made.
        public mutating func onEnd() -> Refusal? {
            defer { if state != .dialing { state = .done } }
            if case .awaitingData = state { return .unpaid }
            return nil
        }

        /// The dial-back outcome: the response to write.
        public mutating func onDialed(_ status: DialStatus) -> DialResponse {
            state = .done
            return DialResponse(status: .ok, addrIdx: chosen?.1 ?? 0, dialStatus: status)
        }

        mutating func refuse(_ s: ResponseStatus, _ why: Refusal) -> Action {
            state = .done
            return .respond(DialResponse(status: s, addrIdx: 0, dialStatus: .unused), refusal: why)
        }
    }

    /// Bounds on concurrent dial-backs, per requester and in total. Pure bookkeeping.
    public struct Limiter: Sendable {
        public var maxPerPeer: Int
        public var maxTotal: Int
        var active: [PeerId: Int] = [:]
        public private(set) var total = 0

        public init(maxPerPeer: Int = 2, maxTotal: Int = 16) { self.maxPerPeer = maxPerPeer; self.maxTotal = maxTotal }

        /// Takes a slot for `peer`, or says why not.
        public mutating func acquire(_ peer: PeerId) -> Refusal? {
            if total >= maxTotal { return .totalLimit }
            if active[peer, default: 0] >= maxPerPeer { return .perPeerLimit }
            active[peer, default: 0] += 1
            total += 1
            return nil
        }

        public mutating func release(_ peer: PeerId) {
            guard let n = active[peer], n > 0 else { return }
            active[peer] = n == 1 ? nil : n - 1
            total -= 1
        }
    }

    /// The client's view: per address, which servers reached it and which did not; concluding
    /// reachable or unreachable after `minConfirmations` servers agree (the spec suggests 3).
    /// Outcomes expire after `window`; bounded in addresses and servers per address.
    public struct Tally: Sendable {
        public enum Outcome: String, Sendable {
            /// The server dialled the address and the nonce came back on it.
            case reachable
            /// The server could not connect.
            case unreachable
        }

        public var minConfirmations: Int
        public var window: Duration
        public let maxAddrs = 32
        public let maxServersPerAddr = 32
        var outcomes: [Multiaddr: [PeerId: (Outcome, Instant)]] = [:]

        public init(minConfirmations: Int = 3, window: Duration = .seconds(3600)) {
            self.minConfirmations = minConfirmations; self.window = window
        }

        public mutating func record(_ addr: Multiaddr, server: PeerId, _ o: Outcome, now: Instant) {
            if outcomes[addr] == nil, outcomes.count >= maxAddrs {
                let oldest = outcomes.min { ($0.value.values.map(\.1).max() ?? .zero) < ($1.value.values.map(\.1).max() ?? .zero) }
                if let k = oldest?.key { outcomes.removeValue(forKey: k) }
            }
            var m = outcomes[addr] ?? [:]
            if m[server] == nil, m.count >= maxServersPerAddr, let k = m.min(by: { $0.value.1 < $1.value.1 })?.key { m.removeValue(forKey: k) }
            m[server] = (o, now)
            outcomes[addr] = m
        }

        public mutating func expire(now: Instant) {
            for (a, m) in outcomes {
                let kept = m.filter { now - $0.value.1 <= window }
                outcomes[a] = kept.isEmpty ? nil : kept
            }
        }

        public func status(of addr: Multiaddr) -> Outcome? {
            guard let m = outcomes[addr] else { return nil }
            let yes = m.values.filter { $0.0 == .reachable }.count
            let no = m.count - yes
            if yes >= minConfirmations, yes > no { return .reachable }
            if no >= minConfirmations, no > yes { return .unreachable }
            return nil
        }

        /// The addresses confirmed reachable.
        public var reachableAddrs: [Multiaddr] {
            outcomes.keys.filter { status(of: $0) == .reachable }.sorted { $0.description < $1.description }
        }

        /// Public once an address is confirmed reachable; private once some are confirmed
        /// unreachable and none reachable; unknown before.
        public var reachability: NAT.Reachability {
            var sawUnreachable = false
            for a in outcomes.keys {
                switch status(of: a) {
                case .reachable: return .public
                case .unreachable: sawUnreachable = true
                case nil: break
                }
            }
            return sawUnreachable ? .private : .unknown
        }

        /// Servers that already answered for `addr` (ask others next).
        public func servers(for addr: Multiaddr) -> Set<PeerId> { Set(outcomes[addr].map { Array($0.keys) } ?? []) }
    }
}

