import FoundationEssentials
import LatticaAPI
import LatticaCore
import LatticaCrypto
import LatticaNAT
import LatticaUV
import Logging
import Metrics

/// Port mapping: asks the router to forward the TCP listen port, with our own sans-I/O clients in
/// LatticaNAT, one protocol after the other in the order of `[portmap] protocols` (default PCP
/// (RFC 6887) → NAT-PMP (RFC 6886) → UPnP-IGD): the next is tried when the previous gives up
/// (no answer, unsupported version, refused). PCP and NAT-PMP share the server port 5351 and
/// RFC 6887 §9 falls back in that order; UPnP comes last because it is the heaviest (SSDP, HTTP,
/// SOAP) and the one with the largest attack surface on the LAN. The first success holds: the
/// lease is renewed at half its lifetime, the mapped address advertised
/// (`swarm.setAdvertised("portmap", …)`) and the mapping deleted at stop. Where no router
/// answers at all, the whole chain gives up after 3.75 + 3.75 + 3 s with one log line.
final class PortMappingService: NodeService, NATStatusContributor, @unchecked Sendable {
    static let name = "portmap"

    enum Method: String, CaseIterable {
        case pcp, natpmp, upnp
        /// The label in metrics and `lattica nat`.
        var label: String { self == .natpmp ? "nat-pmp" : rawValue }
    }

    struct Settings {
        var enabled = true
        var lifetime: UInt32 = 7200
        /// The router to ask; nil: the default gateway from /proc/net/route.
        var gateway: String?
        var protocols: [Method] = [.pcp, .natpmp, .upnp]
    }

    enum Active {
        case none
        case pcp(PCP.Client)
        case natpmp(NATPMP.Client)
        case upnp(UPnP.Client)
    }

    let settings: Settings
    let ctx: ServiceContext
    var swarm: Swarm { ctx.swarm }
    var loop: EventLoop { ctx.loop }
    var logger: Logger { ctx.logger }
    var active = Active.none
    private var next = 0
    var socket: UDPSocket?
    var ssdpSocket: UDPSocket?
    var gateway: SocketAddress?
    var gatewayIP: [UInt8] = []
    var local: (ip: [UInt8], lan: UPnP.Subnet)?
    var timer: LoopTimer?
    var internalPort: UInt16 = 0
    var internalAddr = ""
    /// The mapping we hold: method, external address, granted lifetime (0: permanent), when.
    var holding: (method: Method, addr: Multiaddr, lifetime: UInt32, at: Instant)?
    var stopping = false
    var exchanges = 0

    static func validate(section: TableReader) throws(ConfigError) { _ = try settings(section) }

    static func settings(_ section: TableReader) throws(ConfigError) -> Settings {
        var r = section, s = Settings()
        if let v = try r.bool("enabled") { s.enabled = v }
        if let v = try r.int("lifetime_s", range: 60...86_400) { s.lifetime = UInt32(v) }
        if let v = try r.string("gateway"), !v.isEmpty {
            guard UPnP.ipv4(v) != nil else { throw r.err("gateway", "must be an IPv4 address, got '\(v)'") }
            s.gateway = v
        }
        if let list = try r.strings("protocols") {
            var out: [Method] = []
            for p in list {
                guard let m = Method(rawValue: p == "nat-pmp" ? "natpmp" : p) else {
                    throw r.err("protocols", "unknown protocol '\(p)'; use \"pcp\", \"natpmp\", \"upnp\"")
                }
                guard !out.contains(m) else { throw r.err("protocols", "'\(p)' listed twice") }
                out.append(m)
            }
            s.protocols = out
        }
        try r.finish()
        return s
    }

    init(context: ServiceContext) throws(DaemonError) {
        ctx = context
        do { settings = try Self.settings(context.section) } catch { throw DaemonError(error.description) }
    }

    static func count(_ m: Method, _ outcome: String) {
        Counter(label: "lattica_portmap_requests_total", dimensions: [("method", m.label), ("outcome", outcome)]).increment()
    }

    static func countBad(_ m: Method, _ reason: String) {
        Counter(label: "lattica_portmap_bad_responses_total", dimensions: [("method", m.label), ("reason", reason)]).increment()
    }

    func start() {
        guard settings.enabled, !settings.protocols.isEmpty else { return }
        // the TCP port of the first listener on a non-loopback IPv4 address (or 0.0.0.0)
        guard let port = swarm.listenAddrs.lazy.compactMap(Self.mappablePort).first else {
            logger.debug("port mapping: no listener beyond loopback; nothing to map")
            return
        }
        guard let gwText = settings.gateway ?? Self.defaultGateway(), let gwIP = UPnP.ipv4(gwText),
              let gw = try? SocketAddress(host: gwText, port: NATPMP.port) else {
            logger.info("port mapping: no default gateway; off")
            return
        }
        gateway = gw
        gatewayIP = gwIP
        internalPort = port
        internalAddr = "/ip4/0.0.0.0/tcp/\(port)"
        // our address on the gateway's network: PCP's client address, UPnP's NewInternalClient
        if let n = SocketAddress.ipv4Networks().first(where: { UPnP.Subnet(address: $0.address, mask: $0.netmask).contains(gwIP) }) {
            local = (n.address, UPnP.Subnet(address: n.address, mask: n.netmask))
        }
        tryNext()
    }

    /// Starts the next protocol of the chain, or says that none mapped.
    func tryNext() {
        closeSockets()
        active = .none
        guard !stopping else { return }
        guard next < settings.protocols.count else {
            logger.info("port mapping: no router answer offered a mapping; off", metadata: [
                "gateway": "\(gatewayIP.map(String.init).joined(separator: "."))",
                "tried": "\(settings.protocols.map(\.label).joined(separator: ","))"])
            return
        }
        let m = settings.protocols[next]
        next += 1
        switch m {
        case .pcp:
            guard let local, openGatewaySocket() else { logger.debug("port mapping: PCP needs our address on the gateway's network"); return tryNext() }
            var c = PCP.Client(internalPort: internalPort, clientIP: local.ip, nonce: SecureRandom.bytes(12), settings: .init(lifetime: settings.lifetime))
            let out = c.start(now: loop.now)
            active = .pcp(c)
            applyPCP(out)
        case .natpmp:
            guard openGatewaySocket() else { return tryNext() }
            var c = NATPMP.Client(proto: .tcp, internalPort: internalPort, settings: .init(lifetime: settings.lifetime))
            let out = c.start(now: loop.now)
            active = .natpmp(c)
            applyNATPMP(out)
        case .upnp:
            guard let local else { logger.debug("port mapping: UPnP needs our address on the gateway's network"); return tryNext() }
            startUPnP(local: local)
        }
    }

    func drain(_ done: @escaping () -> Void) {
        guard case .upnp = active, holding != nil else { return done() }
        drainUPnP(done)
    }

    func stop() {
        stopping = true
        switch active {
        case .pcp(var c):
            let out = c.stop(now: loop.now)
            active = .pcp(c)
            applyPCP(out)   // the delete is sent with uv_udp_try_send: out before the socket closes
        case .natpmp(var c):
            let out = c.stop(now: loop.now)
            active = .natpmp(c)
            applyNATPMP(out)
        case .upnp, .none:
            break   // UPnP deleted its mapping in `drain`
        }
        timer?.cancel()
        timer = nil
        closeSockets()
    }

    func closeSockets() {
        socket?.close()
        socket = nil
        closeSSDP()
    }

    /// The UDP socket towards the gateway's port 5351 (PCP, NAT-PMP).
    private func openGatewaySocket() -> Bool {
        guard let gw = gateway else { return false }
        let sock: UDPSocket
        do { sock = try UDPSocket.bind(on: loop, address: try SocketAddress(host: "0.0.0.0", port: 0)) } catch {
            logger.warning("port mapping: cannot open a UDP socket", metadata: ["error": "\(error)"])
            return false
        }
        sock.onDatagram = { [weak self] buf, from in
            guard let self, from == gw else { return }
            self.onGatewayDatagram(Array(buf))
        }
        sock.startReceiving()
        socket = sock
        return true
    }

    private func onGatewayDatagram(_ bytes: [UInt8]) {
        switch active {
        case .pcp(var c):
            let out = c.onDatagram(bytes, now: loop.now)
            active = .pcp(c)
            applyPCP(out)
        case .natpmp(var c):
            let before = c.ignored
            let out = c.onDatagram(bytes, now: loop.now)
            if c.ignored > before { Self.countBad(.natpmp, NATPMP.decode(bytes) == nil ? "malformed" : "other_request") }
            active = .natpmp(c)
            applyNATPMP(out)
        case .upnp, .none:
            break
        }
    }

    func schedule(at: Instant) {
        timer?.cancel()
        timer = ctx.timer(after: max(at - loop.now, .zero)) { [weak self] _ in self?.onTimer() }
    }

    private func onTimer() {
        let now = loop.now
        switch active {
        case .pcp(var c): let out = c.onTimer(now: now); active = .pcp(c); applyPCP(out)
        case .natpmp(var c): let out = c.onTimer(now: now); active = .natpmp(c); applyNATPMP(out)
        case .upnp(var c): let out = c.onTimer(now: now); active = .upnp(c); applyUPnP(out)
        case .none: break
        }
    }

    func send(_ bytes: [UInt8]) {
        guard let socket, let gateway else { return }
        socket.send(bytes, to: gateway) { [logger] e in
            if let e { logger.debug("port mapping: send failed", metadata: ["error": "\(e)"]) }
        }
    }

    private func applyPCP(_ directives: [PCP.Directive]) {
        for d in directives {
            switch d {
            case .send(let bytes): send(bytes)
            case .scheduleTimer(let at): schedule(at: at)
            case .mapped(let ip, let port, let lifetime): mapped(.pcp, ip, port, lifetime)
            case .unmapped: unmapped(.pcp)
            case .rejected(let e):
                Self.countBad(.pcp, e.reason)
                logger.debug("port mapping: PCP answer refused", metadata: ["reason": "\(e)"])
            case .gaveUp(let reason):
                switch reason {
                case .noAnswer: gaveUp(.pcp, "no_answer", "no PCP answer")
                case .unsupportedVersion(let v): gaveUp(.pcp, "unsupported_version", "the gateway speaks version \(v), not PCP (2)")
                case .refused(let code): gaveUp(.pcp, "refused", "the gateway refused the PCP mapping (result \(code))")
                }
            }
        }
    }

    private func applyNATPMP(_ directives: [NATPMP.Directive]) {
        for d in directives {
            switch d {
            case .send(let bytes): send(bytes)
            case .scheduleTimer(let at): schedule(at: at)
            case .mapped(let ip, let port, let lifetime): mapped(.natpmp, ip, port, lifetime)
            case .unmapped: unmapped(.natpmp)
            case .gaveUp(.noAnswer): gaveUp(.natpmp, "no_answer", "no NAT-PMP answer")
            case .gaveUp(.refused(let code)): gaveUp(.natpmp, "refused", "the gateway refused the NAT-PMP mapping (result \(code))")
            }
        }
    }

    func mapped(_ m: Method, _ ip: [UInt8], _ port: UInt16, _ lifetime: UInt32) {
        let renewed = holding != nil
        let addr = Multiaddr([.ip4(ip), .tcp(port)])
        holding = (m, addr, lifetime, loop.now)
        Self.count(m, renewed ? "renewed" : "mapped")
        if !renewed {
            logger.notice("port mapping: router maps our port", metadata: [
                "method": "\(m.label)", "external": "\(addr)", "internal": "\(internalAddr)", "lifetime_s": "\(lifetime)"])
        }
        swarm.setAdvertised("portmap", [addr])
    }

    func unmapped(_ m: Method) {
        if holding != nil { Self.count(m, stopping ? "deleted" : "expired") }
        holding = nil
        swarm.setAdvertised("portmap", [])
    }

    /// One protocol gave up: one log line, then the next protocol.
    func gaveUp(_ m: Method, _ outcome: String, _ message: String) {
        Self.count(m, outcome)
        logger.info("port mapping: \(message); next protocol", metadata: ["method": "\(m.label)"])
        timer?.cancel()
        timer = nil
        tryNext()
    }

    func contribute(to status: inout NATStatusResult) {
        guard let h = holding else { return }
        let left = h.lifetime == 0 ? 0 : max(0, Double(h.lifetime) - (loop.now - h.at).secondsDouble)
        status.portMappings.append(PortMappingEntry(method: h.method.label, internalAddr: internalAddr,
                                                    externalAddr: h.addr.description, lifetimeSeconds: left))
    }

    /// The TCP port of `/ip4/A/tcp/P` when A is not loopback.
    static func mappablePort(_ ma: Multiaddr) -> UInt16? {
        let c = ma.withoutPeerId.components
        guard c.count == 2, case .ip4(let b) = c[0], b.count == 4, b[0] != 127, case .tcp(let p) = c[1], p != 0 else { return nil }
        return p
    }

    /// The IPv4 default gateway from /proc/net/route (Linux), nil when there is none.
    static func defaultGateway(_ table: String? = try? String(contentsOfFile: "/proc/net/route", encoding: .utf8)) -> String? {
        guard let table else { return nil }
        for line in table.split(separator: "\n").dropFirst() {
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard f.count > 3, f[1] == "00000000", let gw = UInt32(f[2], radix: 16), gw != 0,
                  let flags = UInt32(f[3], radix: 16), flags & 0x2 != 0 else { continue }
            // little-endian hex of the address in network order
            return "\(gw & 0xff).\(gw >> 8 & 0xff).\(gw >> 16 & 0xff).\(gw >> 24)"
        }
        return nil
    }
}
