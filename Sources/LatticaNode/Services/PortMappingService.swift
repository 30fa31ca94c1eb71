import FoundationEssentials
import LatticaAPI
import LatticaCore
import LatticaNAT
import LatticaUV
import Logging
import Metrics

/// Port mapping: asks the default gateway, over NAT-PMP (RFC 6886, our own client:
/// `NATPMP.Client` in LatticaNAT), to forward the TCP listen port, renews the lease at half its
/// lifetime, advertises the mapped address (`swarm.setAdvertised("portmap", …)`) and deletes the
/// mapping when the daemon stops. Gives up quietly (one log line) when no router answers within
/// `NATPMP.Settings.tries` (3.75 s). UPnP-IGD is not done (see Docs/TESTNETS.md).
final class PortMappingService: NodeService, NATStatusContributor, @unchecked Sendable {
    static let name = "portmap"

    struct Settings {
        var enabled = true
        var lifetime: UInt32 = 7200
        /// The router to ask; nil: the default gateway from /proc/net/route.
        var gateway: String?
    }

    let settings: Settings
    private let ctx: ServiceContext
    private var swarm: Swarm { ctx.swarm }
    private var loop: EventLoop { ctx.loop }
    private var logger: Logger { ctx.logger }
    private var client: NATPMP.Client?
    private var socket: UDPSocket?
    private var gateway: SocketAddress?
    private var timer: LoopTimer?
    private var internalAddr = ""
    private var mappedLifetime: UInt32 = 0
    private var stopping = false

    static func validate(section: TableReader) throws(ConfigError) { _ = try settings(section) }

    static func settings(_ section: TableReader) throws(ConfigError) -> Settings {
        var r = section, s = Settings()
        if let v = try r.bool("enabled") { s.enabled = v }
        if let v = try r.int("lifetime_s", range: 60...86_400) { s.lifetime = UInt32(v) }
        if let v = try r.string("gateway"), !v.isEmpty {
            guard (try? SocketAddress(host: v, port: NATPMP.port)) != nil else { throw r.err("gateway", "must be an IPv4 address, got '\(v)'") }
            s.gateway = v
        }
        try r.finish()
        return s
    }

    init(context: ServiceContext) throws(DaemonError) {
        ctx = context
        do { settings = try Self.settings(context.section) } catch { throw DaemonError(error.description) }
    }

    static func count(_ outcome: String) {
        Counter(label: "lattica_portmap_requests_total", dimensions: [("method", "nat-pmp"), ("outcome", outcome)]).increment()
    }

    func start() {
        guard settings.enabled else { return }
        // the TCP port of the first listener on a non-loopback IPv4 address (or 0.0.0.0)
        guard let port = swarm.listenAddrs.lazy.compactMap(Self.mappablePort).first else {
            logger.debug("port mapping: no listener beyond loopback; nothing to map")
            return
        }
        guard let gwText = settings.gateway ?? Self.defaultGateway(),
              let gw = try? SocketAddress(host: gwText, port: NATPMP.port) else {
            logger.info("port mapping: no default gateway; off")
            return
        }
        let sock: UDPSocket
        do { sock = try UDPSocket.bind(on: loop, address: try SocketAddress(host: "0.0.0.0", port: 0)) } catch {
            logger.warning("port mapping: cannot open a UDP socket; off", metadata: ["error": "\(error)"])
            return
        }
        sock.onDatagram = { [weak self] buf, from in
            guard let self, from == gw else { return }
            self.apply(self.client?.onDatagram(Array(buf), now: self.loop.now) ?? [])
        }
        sock.startReceiving()
        socket = sock
        gateway = gw
        internalAddr = "/ip4/0.0.0.0/tcp/\(port)"
        var c = NATPMP.Client(proto: .tcp, internalPort: port, settings: .init(lifetime: settings.lifetime))
        let first = c.start(now: loop.now)
        client = c
        apply(first)
    }

    func stop() {
        stopping = true
        if var c = client {
            let out = c.stop(now: loop.now)
            client = c
            apply(out)   // the delete is sent with uv_udp_try_send: out before the socket closes
        }
        timer?.cancel()
        timer = nil
        socket?.close()
        socket = nil
    }

    private func apply(_ directives: [NATPMP.Directive]) {
        for d in directives {
            switch d {
            case .send(let bytes):
                guard let socket, let gateway else { continue }
                socket.send(bytes, to: gateway) { [logger] e in
                    if let e { logger.debug("port mapping: send failed", metadata: ["error": "\(e)"]) }
                }
            case .scheduleTimer(let at):
                timer?.cancel()
                let delay = max(at - loop.now, .zero)
                timer = ctx.timer(after: delay) { [weak self] _ in
                    guard let self, var c = self.client else { return }
                    let out = c.onTimer(now: self.loop.now)
                    self.client = c
                    self.apply(out)
                }
            case .mapped(let ip, let port, let lifetime):
                let renewed = mappedLifetime != 0
                mappedLifetime = lifetime
                Self.count(renewed ? "renewed" : "mapped")
                let addr = Multiaddr([.ip4(ip), .tcp(port)])
                if !renewed {
                    logger.notice("port mapping: router maps our port", metadata: [
                        "external": "\(addr)", "internal": "\(internalAddr)", "lifetime_s": "\(lifetime)"])
                }
                swarm.setAdvertised("portmap", [addr])
            case .unmapped:
                if mappedLifetime != 0 { Self.count(stopping ? "deleted" : "expired") }
                mappedLifetime = 0
                swarm.setAdvertised("portmap", [])
            case .gaveUp(let reason):
                switch reason {
                case .noAnswer:
                    Self.count("no_answer")
                    logger.info("port mapping: no NAT-PMP answer from the gateway; off", metadata: ["gateway": "\(gateway.map { "\($0)" } ?? "-")"])
                case .refused(let code):
                    Self.count("refused")
                    logger.info("port mapping: the gateway refused the mapping; off", metadata: ["result_code": "\(code)"])
                }
                socket?.close()
                socket = nil
            }
        }
    }

    func contribute(to status: inout NATStatusResult) {
        guard let c = client, c.isMapped else { return }
        let ext = Multiaddr([.ip4(c.externalIP), .tcp(c.externalPort)])
        status.portMappings.append(PortMappingEntry(method: "nat-pmp", internalAddr: internalAddr,
                                                    externalAddr: ext.description, lifetimeSeconds: Double(mappedLifetime)))
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
