import LatticaCore

extension STUN {
    /// One probe of our NAT through STUN servers, from one local UDP socket: the mapped address
    /// (RFC 8489 binding), then, where the server offers OTHER-ADDRESS, RFC 5780's filtering tests
    /// (§4.4: CHANGE-REQUEST change-IP+port, then change-port, to the primary address) and mapping
    /// tests (§4.3: binding to the alternate IP with the primary port, then the alternate address).
    /// Filtering goes first: the mapping tests send to the alternate address, which would open the
    /// filter for it and make every filter look endpoint-independent.
    ///
    /// Sans-I/O: datagrams and time are inputs, directives the outputs. One transaction at a time,
    /// retransmitted per RFC 8489 §6.2.1 (RTO doubling, `maxRequests` requests, then a final wait
    /// of `finalWaitFactor` × RTO). A response is accepted only with our transaction id, and (except
    /// where CHANGE-REQUEST asks the server to answer from elsewhere) from the address we sent to.
    public struct Probe: Sendable {
        public struct Settings: Sendable {
            /// RFC 8489 §6.2.1: the initial RTO SHOULD be more than 500 ms.
            public var rto: Duration = .milliseconds(500)
            /// Rc: requests per transaction.
            public var maxRequests = 7
            /// Rm: the final wait, in initial RTOs.
            public var finalWaitFactor = 16
            /// Requests per filtering test, whose silence is the answer (a shorter wait).
            public var filteringRequests = 3
            /// The final wait of a filtering test, in initial RTOs: 4 rather than Rm's 16, so that
            /// the two silent tests behind a filtering NAT take 2 × 7 RTOs, not 2 × 19. An answer
            /// later than that reads as "filtered", the stricter conclusion (a birthday punch
            /// still applies to it; see `Spray.plan`).
            public var filteringFinalWaitFactor = 4
            public init() {}
        }

        public struct Result: Sendable, Equatable {
            /// The server that answered test I.
            public var server: NAT.Endpoint?
            /// Our address as the server sees it (test I).
            public var mapped: NAT.Endpoint?
            /// Every mapped address seen (differs per destination behind a dependent-mapping NAT).
            public var mappedAll: [NAT.Endpoint] = []
            public var mapping: NAT.Behaviour = .unknown
            public var filtering: NAT.Behaviour = .unknown
            public init() {}
        }

        public enum Directive: Sendable, Equatable {
            case send([UInt8], to: NAT.Endpoint)
            /// Call `onTimer` at (or after) this instant.
            case wake(at: Instant)
            case finished(Result)
        }

        public struct Metrics: Sendable, Equatable {
            public var transactions = 0
            public var requestsSent = 0
            public var responses = 0
            public var errorResponses = 0
            public var timeouts = 0
            /// Datagrams refused, by reason (`lattica_stun_rejected_total{reason}`).
            public var rejected: [String: Int] = [:]
            public init() {}
        }

        enum Step: Equatable {
            case binding(server: Int)
            case filteringBoth, filteringPort
            case mappingAltIP, mappingAltBoth
            case done
        }

        struct Transaction {
            var id: TransactionID
            var request: [UInt8]
            var to: NAT.Endpoint
            var sent = 0
            var limit: Int
            var rto: Duration
            var nextAt: Instant
            /// Where the answer must come from.
            var expectFrom: NAT.Endpoint
            var isChange: Bool
        }

        public let settings: Settings
        public let servers: [NAT.Endpoint]
        /// Our own addresses (interface IPs with the socket's port): a mapped address among them
        /// means no NAT.
        public let localEndpoints: [NAT.Endpoint]
        public private(set) var result = Result()
        public private(set) var metrics = Metrics()
        var rng: SeededRandom
        var step: Step = .done
        var tx: Transaction?
        var other: NAT.Endpoint?
        var mappedAltIP: NAT.Endpoint?

        public init(servers: [NAT.Endpoint], localEndpoints: [NAT.Endpoint], settings: Settings = Settings(), seed: UInt64) {
            self.servers = servers
            self.localEndpoints = localEndpoints
            self.settings = settings
            self.rng = SeededRandom(seed: seed)
        }

        public var isFinished: Bool { step == .done && tx == nil }

        public mutating func start(now: Instant) -> [Directive] {
            guard !servers.isEmpty else { return [.finished(result)] }
            return begin(.binding(server: 0), to: servers[0], change: nil, now: now)
        }

        mutating func begin(_ s: Step, to: NAT.Endpoint, change: ChangeRequest?, now: Instant, expectFrom: NAT.Endpoint? = nil) -> [Directive] {
            step = s
            let id = TransactionID(using: &rng)
            let limit = change == nil ? settings.maxRequests : settings.filteringRequests
            var t = Transaction(id: id, request: STUN.bindingRequest(id, change: change), to: to, limit: max(1, limit),
                                rto: settings.rto, nextAt: now, expectFrom: expectFrom ?? to, isChange: change != nil)
            metrics.transactions += 1
            let ds = transmit(&t, now: now)
            tx = t
            return ds
        }

        func transmitDirectives(_ t: Transaction, _ wake: Instant) -> [Directive] { [.send(t.request, to: t.to), .wake(at: wake)] }

        mutating func transmit(_ t: inout Transaction, now: Instant) -> [Directive] {
            t.sent += 1
            metrics.requestsSent += 1
            if t.sent >= t.limit {
                t.nextAt = now + settings.rto * (t.isChange ? settings.filteringFinalWaitFactor : settings.finalWaitFactor)
            } else {
                t.nextAt = now + t.rto
                t.rto = t.rto * 2
            }
            return transmitDirectives(t, t.nextAt)
        }

        public mutating func onTimer(now: Instant) -> [Directive] {
            guard var t = tx, now >= t.nextAt else { return tx.map { [.wake(at: $0.nextAt)] } ?? [] }
            if t.sent < t.limit {
                let ds = transmit(&t, now: now)
                tx = t
                return ds
            }
            tx = nil
            metrics.timeouts += 1
            return advance(response: nil, now: now)
        }

        public mutating func onDatagram(_ bytes: some Collection<UInt8>, from: NAT.Endpoint, now: Instant) -> [Directive] {
            let m: Message
            switch STUN.decode(bytes) {
            case .failure(let e): reject(e.rawValue); return []
            case .success(let d): m = d
            }
            guard let t = tx, m.transactionID == t.id else { reject("unknown_transaction"); return [] }
            guard m.type == .bindingSuccess || m.type == .bindingError else { reject("not_a_response"); return [] }
            if from != t.expectFrom {
                if t.isChange, from == t.to {
                    // CHANGE-REQUEST asked for an answer from elsewhere; one from the primary
                    // address means the server ignored it, which says nothing about our filter.
                    reject("change_ignored")
                    tx = nil
                    return finishFiltering(.unknown, now: now)
                }
                reject("source_mismatch")
                return []
            }
            tx = nil
            if m.type == .bindingError {
                metrics.errorResponses += 1
                return advance(response: nil, now: now)
            }
            guard let mapped = m.mapped else { reject("no_mapped_address"); return advance(response: nil, now: now) }
            metrics.responses += 1
            if !result.mappedAll.contains(mapped) { result.mappedAll.append(mapped) }
            return advance(response: (mapped, m.otherAddress), now: now)
        }

        mutating func reject(_ reason: String) { metrics.rejected[reason, default: 0] += 1 }

        mutating func advance(response: (NAT.Endpoint, NAT.Endpoint?)?, now: Instant) -> [Directive] {
            switch step {
            case .binding(let i):
                guard let (mapped, otherAddr) = response else {
                    if i + 1 < servers.count { return begin(.binding(server: i + 1), to: servers[i + 1], change: nil, now: now) }
                    return done()
                }
                result.server = servers[i]
                result.mapped = mapped
                if localEndpoints.contains(mapped) { result.mapping = .none }
                // OTHER-ADDRESS must differ from the primary in both IP and port to be of use.
                if let o = otherAddr, o.ip != servers[i].ip, o.port != servers[i].port, o.isIPv4 == servers[i].isIPv4 {
                    other = o
                    return begin(.filteringBoth, to: servers[i], change: ChangeRequest(changeIP: true, changePort: true), now: now,
                                 expectFrom: o)
                }
                return done()
            case .filteringBoth:
                if response != nil { return finishFiltering(.endpointIndependent, now: now) }
                let primary = result.server!
                return begin(.filteringPort, to: primary, change: ChangeRequest(changeIP: false, changePort: true), now: now,
                             expectFrom: NAT.Endpoint(ip: primary.ip, port: other!.port))
            case .filteringPort:
                return finishFiltering(response != nil ? .addressDependent : .addressAndPortDependent, now: now)
            case .mappingAltIP:
                guard let (mapped, _) = response else { return done() }
                if mapped == result.mapped { result.mapping = .endpointIndependent; return done() }
                mappedAltIP = mapped
                return begin(.mappingAltBoth, to: other!, change: nil, now: now)
            case .mappingAltBoth:
                guard let (mapped, _) = response else { return done() }
                result.mapping = mapped == mappedAltIP ? .addressDependent : .addressAndPortDependent
                return done()
            case .done:
                return []
            }
        }

        mutating func finishFiltering(_ f: NAT.Behaviour, now: Instant) -> [Directive] {
            result.filtering = f
            if result.mapping == .none { return done() }
            let primary = result.server!
            return begin(.mappingAltIP, to: NAT.Endpoint(ip: other!.ip, port: primary.port), change: nil, now: now)
        }

        mutating func done() -> [Directive] {
            step = .done
            tx = nil
            return [.finished(result)]
        }
    }
}
