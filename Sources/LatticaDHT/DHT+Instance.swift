public import LatticaCore

extension DHT {
    /// One node's Kademlia: routing table, inbound request handling, queries, bootstrap, refresh,
    /// record maintenance. Sans-I/O: every event comes in with `now`, every effect goes out as a
    /// `Directive`. It never throws for network input; bad peers become `.peerMisbehaved`.
    public struct Instance: Sendable {
        public let localPeer: PeerId
        public let localKey: Key
        public var settings: Settings
        public internal(set) var routingTable: RoutingTable
        /// Connected peers that are not DHT servers (clients behind NATs), with their addresses
        /// (relayed ones included): a FIND_NODE for exactly such a peer names it, so that others
        /// can reach it through its relay (go-libp2p does the same). Bounded.
        public internal(set) var connectedClients: [PeerId: [[UInt8]]] = [:]
        public static let maxConnectedClients = 4096
        /// The records and providers, in memory. The instance persists nothing: every change is also
        /// a `.persist` directive, and the shell restores a store with `init(…, store:)`.
        public internal(set) var store: MemoryRecordStore
        public var validator: Validator
        public internal(set) var metrics = Metrics()

        var rng: SeededRandom
        var nextRequestID: UInt64 = 1
        var nextQueryID: UInt64 = 1
        var pending: [RequestID: Pending] = [:]
        var queries: [QueryID: Query] = [:]
        var bootstrapAttempt = 0
        var bootstrapQuery: QueryID? = nil
        var lastPublished: [[UInt8]: Instant] = [:]
        var lastProvided: [[UInt8]: Instant] = [:]
        var writeTokens: [PeerId: (tokens: Double, at: Instant)] = [:]

        struct Pending: Sendable {
            enum Purpose: Sendable {
                case lookup(QueryID, path: Int)
                case store(QueryID)
                case probe
                case correction
            }
            var peer: PeerId
            var key: Key
            var type: Message.MessageType
            var purpose: Purpose
        }

        public init(localPeer: PeerId, settings: Settings = .init(), store: MemoryRecordStore? = nil,
                    validator: Validator = Validator(verify: nil), seed: UInt64) {
            self.localPeer = localPeer
            self.localKey = Key(peer: localPeer)
            self.settings = settings
            self.routingTable = RoutingTable(localKey: localKey, k: settings.k, replacementCacheSize: settings.replacementCacheSize)
            self.store = store ?? MemoryRecordStore(localPeer: localPeer)
            self.validator = validator
            self.rng = SeededRandom(seed: seed)
        }

        /// Pending outbound requests and running queries (for tests and status output).
        public var pendingRequestCount: Int { pending.count }
        public var runningQueryCount: Int { queries.count }

        // MARK: Lifecycle and peers

        /// Call once when the node starts: schedules maintenance and starts the bootstrap.
        public mutating func onStart(now: Instant) -> [Directive] {
            var out: [Directive] = [.scheduleTimer(.maintenance, at: now + settings.maintenanceInterval)]
            out += bootstrap(now: now)
            return out
        }

        /// The shell learned (via identify) that `peer` is reachable at `addresses`; `isServer` when it
        /// advertises our DHT protocol id. Only servers enter the routing table (kad-dht spec).
        public mutating func onPeerConnected(_ peer: PeerId, addresses: [[UInt8]], isServer: Bool, now: Instant) -> [Directive] {
            guard peer != localPeer else { return [] }
            guard isServer else {
                if connectedClients[peer] != nil || connectedClients.count < Self.maxConnectedClients {
                    connectedClients[peer] = Array(addresses.prefix(32))
                }
                return []
            }
            connectedClients.removeValue(forKey: peer)
            return heardFrom(peer, key: Key(peer: peer), addresses: addresses, now: now)
        }

        /// Same, with the Kademlia key already known (saves a SHA-256 in large simulations).
        public mutating func onPeerConnected(_ peer: PeerId, key: Key, addresses: [[UInt8]], now: Instant) -> [Directive] {
            guard peer != localPeer else { return [] }
            return heardFrom(peer, key: key, addresses: addresses, now: now)
        }

        mutating func heardFrom(_ peer: PeerId, key: Key, addresses: [[UInt8]], now: Instant) -> [Directive] {
            switch routingTable.insertOrUpdate(peer, key: key, addresses: addresses, now: now) {
            case .inserted:
                metrics.routingTableInsertions += 1
                return [.routingTableUpdated(added: peer, removed: nil)]
            case .cached(let probe?):
                // Probe the least-recently-seen peer with a FIND_NODE for ourselves (the spec deprecates PING).
                return send(Message(type: .findNode, key: localPeer.multihash), to: probe.peer, key: probe.key,
                            addresses: probe.addresses, purpose: .probe, now: now)
            case .replaced(let gone):
                metrics.routingTableInsertions += 1
                return [.routingTableUpdated(added: peer, removed: gone)]
            case .updated, .cached(nil), .isSelf:
                return []
            }
        }

        /// The shell's last connection to `peer` closed. Kademlia keeps the entry (the peer is likely
        /// still there and reachable by address) but marks it, so that it is the first to give way
        /// to a newcomer when its bucket is full.
        public mutating func onPeerDisconnected(_ peer: PeerId, now: Instant) -> [Directive] {
            routingTable.markDisconnected(peer, key: Key(peer: peer))
            connectedClients.removeValue(forKey: peer)
            return []
        }

        // MARK: Outbound requests

        mutating func send(_ m: Message, to peer: PeerId, key: Key, addresses: [[UInt8]], purpose: Pending.Purpose,
                           expectsResponse: Bool = true, now: Instant) -> [Directive] {
            let id = RequestID(nextRequestID)
            nextRequestID += 1
            pending[id] = Pending(peer: peer, key: key, type: m.type, purpose: purpose)
            metrics.requestsSent += 1
            return [
                .send(m, to: peer, addresses: addresses, request: id, expectsResponse: expectsResponse),
                .scheduleTimer(.requestTimeout(id), at: now + settings.requestTimeout),
            ]
        }

        /// The response bytes (one frame body) for `request`.
        public mutating func onResponse(_ bytes: ArraySlice<UInt8>, request: RequestID, now: Instant) -> [Directive] {
            guard let p = pending[request] else { return [] }
            do {
                let decoded = try Message.decode(bytes, limits: settings.decodeLimits)
                return onResponse(decoded, request: request, now: now)
            } catch {
                var out = misbehaved(p.peer, decodeMisbehavior(error))
                out += onRequestFailed(request, now: now)
                return out
            }
        }

        /// A decoded response (the simulator hands messages over without bytes).
        public mutating func onResponse(_ message: Message, request: RequestID, now: Instant) -> [Directive] {
            onResponse(Decoded(message: message, droppedPeers: 0), request: request, now: now)
        }

        /// A request that has no response (ADD_PROVIDER) was written out.
        public mutating func onRequestDelivered(_ request: RequestID, now: Instant) -> [Directive] {
            guard let p = pending.removeValue(forKey: request) else { return [] }
            metrics.responsesReceived += 1
            if case .store(let q) = p.purpose { return storeOutcome(q, success: true, now: now) }
            return []
        }

        /// The stream for `request` failed (dial error, reset, EOF before a response).
        public mutating func onRequestFailed(_ request: RequestID, now: Instant) -> [Directive] {
            failRequest(request, timedOut: false, now: now)
        }

        mutating func failRequest(_ request: RequestID, timedOut: Bool, now: Instant) -> [Directive] {
            guard let p = pending.removeValue(forKey: request) else { return [] }
            if timedOut { metrics.requestTimeouts += 1 } else { metrics.requestFailures += 1 }
            var out: [Directive] = []
            if case .probe = p.purpose {
                let r = routingTable.probeFinished(p.peer, key: p.key, alive: false, now: now)
                if r.removed != nil { metrics.routingTableEvictions += 1; out.append(.routingTableUpdated(added: r.added, removed: r.removed)) }
            } else {
                let r = routingTable.recordFailure(p.peer, key: p.key, maxFailures: settings.maxFailuresBeforeEviction)
                if r.removed != nil { metrics.routingTableEvictions += 1; out.append(.routingTableUpdated(added: r.added, removed: r.removed)) }
            }
            switch p.purpose {
            case .lookup(let q, let path):
                if queries[q] != nil {
                    queries[q]!.lookup.onFailure(path: path, peer: p.peer)
                    queries[q]!.stats.failures += 1
                    out += drive(q, now: now)
                }
            case .store(let q):
                out += storeOutcome(q, success: false, now: now)
            case .probe, .correction:
                break
            }
            return out
        }

        // MARK: Timers

        public mutating func onTimer(_ timer: TimerID, now: Instant) -> [Directive] {
            switch timer {
            case .requestTimeout(let id):
                return failRequest(id, timedOut: true, now: now)
            case .queryTimeout(let q):
                return queryTimedOut(q, now: now)
            case .refresh:
                return refresh(now: now)
            case .bootstrapRetry:
                return bootstrap(now: now)
            case .maintenance:
                return maintenance(now: now)
            }
        }

        // MARK: Misbehavior

        mutating func misbehaved(_ peer: PeerId, _ reason: Misbehavior) -> [Directive] {
            metrics.misbehaviors += 1
            switch reason {
            case .malformedMessage: metrics.malformedMessages += 1
            case .oversizedMessage: metrics.oversizedMessages += 1
            case .rateLimited: metrics.rateLimited += 1
            case .invalidRecord: metrics.invalidRecordsReceived += 1
            default: break
            }
            return [.peerMisbehaved(peer, reason)]
        }

        func decodeMisbehavior(_ error: any Error) -> Misbehavior {
            if let e = error as? DecodeError {
                switch e {
                case .tooLarge(let n): return .oversizedMessage(n)
                case .tooManyPeers(let n): return .tooManyPeers(n)
                default: return .malformedMessage("\(e)")
                }
            }
            return .malformedMessage("\(error)")
        }
    }
}
