import LatticaCore

extension UPnP {
    public struct Settings: Sendable, Equatable {
        /// NewLeaseDuration asked for, seconds; the IGD may only take 0 (permanent, error 725).
        public var lifetime: UInt32 = 7200
        /// Our address on the gateway's network (NewInternalClient), 4 bytes.
        public var localIP: [UInt8]
        /// Networks an SSDP answer and its LOCATION may come from (our interface's subnet).
        public var lan: [Subnet]
        /// M-SEARCH rounds, `searchInterval` apart; gives up `searchInterval` after the last.
        public var searchTries = 3
        public var searchInterval: Duration = .seconds(1)
        public var description = "latticad"

        public init(lifetime: UInt32 = 7200, localIP: [UInt8], lan: [Subnet]) {
            self.lifetime = lifetime; self.localIP = localIP; self.lan = lan
        }
    }

    public enum Directive: Sendable, Equatable {
        /// Send this datagram to 239.255.255.250:1900.
        case sendSSDP([UInt8])
        /// Connect to `to`, write `request`, read the response until `parseHTTP` completes it,
        /// and call `onHTTP(id:result:)` (also with the failure: refused, timeout, malformed).
        case http(id: Int, to: URL, request: [UInt8])
        case scheduleTimer(at: Instant)
        /// `lifetime` 0: the IGD granted a permanent mapping (deleted at stop all the same).
        case mapped(externalIP: [UInt8], externalPort: UInt16, lifetime: UInt32)
        case unmapped
        /// An answer we refused (malformed, off-LAN, ...): counted by the shell.
        case rejected(Error)
        case gaveUp(GiveUpReason)
    }

    public enum GiveUpReason: Sendable, Equatable {
        /// No IGD answered the M-SEARCH.
        case noAnswer
        case failed(Error)
        /// A UPnPError code of AddPortMapping (718 conflict, 725 permanent only, …).
        case refused(Int)
    }

    /// Discovery, description, GetExternalIPAddress, AddPortMapping, renewal at half the lease,
    /// DeletePortMapping at stop; sans-I/O: the shell sends datagrams and runs HTTP exchanges.
    public struct Client: Sendable {
        enum Phase: Sendable, Equatable {
            case idle
            case searching(round: Int)
            case describing(URL)
            case gettingIP
            case adding(lease: UInt32)
            case mapped(renewAt: Instant, expiresAt: Instant?)
            case renewing(lease: UInt32, expiresAt: Instant?)
            case done
        }

        public let internalPort: UInt16
        public let settings: Settings
        private(set) var phase: Phase = .idle
        private var pending = 0
        private var nextID = 1
        private(set) public var service: Service?
        private(set) public var externalIP: [UInt8] = []
        private(set) public var externalPort: UInt16 = 0
        private(set) public var lease: UInt32 = 0

        public init(internalPort: UInt16, settings: Settings) {
            self.internalPort = internalPort; self.settings = settings
        }

        public var isMapped: Bool {
            switch phase { case .mapped, .renewing: true; default: false }
        }

        public mutating func start(now: Instant) -> [Directive] {
            guard phase == .idle else { return [] }
            phase = .searching(round: 1)
            return searchRound(now: now)
        }

        /// An SSDP datagram from `from` (IPv4, 4 bytes).
        public mutating func onDatagram(_ bytes: [UInt8], from: [UInt8], now: Instant) -> [Directive] {
            guard case .searching = phase else { return [] }
            guard settings.lan.contains(where: { $0.contains(from) }) else {
                return [.rejected(Error("off_lan", "SSDP answer from \(from.map(String.init).joined(separator: "."))"))]
            }
            switch UPnP.parseSSDP(bytes) {
            case .failure(let e): return [.rejected(e)]
            case .success(let a):
                guard a.location.host == from else {
                    return [.rejected(Error("off_lan", "LOCATION \(a.location.hostPort) is not the answering host"))]
                }
                phase = .describing(a.location)
                return [request(a.location, UPnP.getRequest(a.location))]
            }
        }

        public mutating func onHTTP(id: Int, result: Result<HTTPResponse, Error>, now: Instant) -> [Directive] {
            guard id == pending else { return [] }
            pending = 0
            switch (phase, result) {
            case (.describing(let loc), .success(let r)):
                guard r.status == 200 else { return giveUp(.failed(Error("http", "description: HTTP \(r.status)"))) }
                switch UPnP.parseDescription(r.body, location: loc) {
                case .failure(let e): return giveUp(.failed(e))
                case .success(let s):
                    service = s
                    phase = .gettingIP
                    return [request(s.controlURL, UPnP.soapRequest(s, action: "GetExternalIPAddress", args: []))]
                }
            case (.gettingIP, .success(let r)):
                switch UPnP.parseSOAP(r, action: "GetExternalIPAddress") {
                case .failure(let e): return giveUp(.failed(e))
                case .success(.fault(let code, _)): return giveUp(.refused(code))
                case .success(.ok(let v)):
                    guard let ip = v["NewExternalIPAddress"].flatMap(UPnP.ipv4), ip != [0, 0, 0, 0] else {
                        return giveUp(.failed(Error("soap", "no usable NewExternalIPAddress")))
                    }
                    externalIP = ip
                    return add(lease: settings.lifetime, now: now)
                }
            case (.adding(let asked), .success(let r)), (.renewing(let asked, _), .success(let r)):
                switch UPnP.parseSOAP(r, action: "AddPortMapping") {
                case .success(.ok):
                    return granted(asked, now: now)
                case .success(.fault(725, _)) where asked != 0:
                    // OnlyPermanentLeasesSupported: ask again for lease 0 (deleted at stop)
                    return add(lease: 0, now: now)
                case .success(.fault(let code, _)):
                    return failedRenewal(now: now) ?? giveUp(.refused(code))
                case .failure(let e):
                    return failedRenewal(now: now) ?? giveUp(.failed(e))
                }
            case (_, .failure(let e)):
                return failedRenewal(now: now) ?? giveUp(.failed(e))
            default:
                return []
            }
        }

        public mutating func onTimer(now: Instant) -> [Directive] {
            switch phase {
            case .searching(let round):
                if round >= settings.searchTries { return giveUp(.noAnswer) }
                phase = .searching(round: round + 1)
                return searchRound(now: now)
            case .mapped(let renewAt, let expiresAt):
                if let expiresAt, now >= expiresAt { phase = .done; return [.unmapped] }
                guard now >= renewAt else { return [.scheduleTimer(at: renewAt)] }
                return add(lease: lease, now: now, renewing: true, expiresAt: expiresAt)
            case .renewing(_, let expiresAt):
                if let expiresAt, now >= expiresAt { phase = .done; return [.unmapped] }
                return []
            default:
                return []
            }
        }

        /// DeletePortMapping for a mapping we hold (the shell runs it; its answer is not awaited).
        public mutating func stop(now: Instant) -> [Directive] {
            let held = isMapped
            phase = .done
            guard held, let service else { return [] }
            let del = UPnP.soapRequest(service, action: "DeletePortMapping",
                                       args: [("NewRemoteHost", ""), ("NewExternalPort", "\(externalPort)"), ("NewProtocol", "TCP")])
            return [request(service.controlURL, del), .unmapped]
        }

        private mutating func searchRound(now: Instant) -> [Directive] {
            UPnP.searchTargets.map { .sendSSDP(UPnP.mSearch($0)) } + [.scheduleTimer(at: now + settings.searchInterval)]
        }

        private mutating func add(lease asked: UInt32, now: Instant, renewing: Bool = false, expiresAt: Instant? = nil) -> [Directive] {
            guard let service else { return giveUp(.failed(Error("soap", "no service"))) }
            phase = renewing ? .renewing(lease: asked, expiresAt: expiresAt) : .adding(lease: asked)
            let port = externalPort != 0 ? externalPort : internalPort
            let args = [("NewRemoteHost", ""), ("NewExternalPort", "\(port)"), ("NewProtocol", "TCP"),
                        ("NewInternalPort", "\(internalPort)"), ("NewInternalClient", settings.localIP.map(String.init).joined(separator: ".")),
                        ("NewEnabled", "1"), ("NewPortMappingDescription", settings.description), ("NewLeaseDuration", "\(asked)")]
            var out = [request(service.controlURL, UPnP.soapRequest(service, action: "AddPortMapping", args: args))]
            if let expiresAt { out.append(.scheduleTimer(at: expiresAt)) }
            return out
        }

        private mutating func granted(_ asked: UInt32, now: Instant) -> [Directive] {
            lease = asked
            externalPort = externalPort != 0 ? externalPort : internalPort
            // a permanent lease is re-added every `settings.lifetime` / 2 all the same (router reboots)
            let period = Duration.seconds(Int64(asked != 0 ? asked : max(settings.lifetime, 2)))
            let renewAt = now + period / 2
            phase = .mapped(renewAt: renewAt, expiresAt: asked != 0 ? now + period : nil)
            return [.mapped(externalIP: externalIP, externalPort: externalPort, lifetime: asked), .scheduleTimer(at: renewAt)]
        }

        /// A renewal that failed keeps the mapping until it expires (nil when not renewing).
        private mutating func failedRenewal(now: Instant) -> [Directive]? {
            guard case .renewing(_, let expiresAt) = phase else { return nil }
            guard let expiresAt else {
                // permanent: try again at the next period
                let next = now + Duration.seconds(Int64(max(settings.lifetime, 2))) / 2
                phase = .mapped(renewAt: next, expiresAt: nil)
                return [.scheduleTimer(at: next)]
            }
            phase = .mapped(renewAt: expiresAt, expiresAt: expiresAt)
            return [.scheduleTimer(at: expiresAt)]
        }

        private mutating func giveUp(_ r: GiveUpReason) -> [Directive] {
            phase = .done
            return [.gaveUp(r)]
        }

        private mutating func request(_ url: URL, _ bytes: [UInt8]) -> Directive {
            pending = nextID
            nextID += 1
            return .http(id: pending, to: url, request: bytes)
        }
    }
}
