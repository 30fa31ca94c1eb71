#if canImport(Glibc)
import Glibc
import LatticaCore
import LatticaCrypto
import Testing
@testable import LatticaWire

/// Live interop with a real libp2p peer on loopback (e.g. the Rust Lattica from PyPI, see
/// Scripts/interop-setup.sh). Skipped unless `LATTICA_INTEROP_DIAL=127.0.0.1:PORT/PEERID` is set;
/// with `LATTICA_INTEROP_LISTEN=PORT` it also waits for that peer to dial us.
@Suite struct InteropTests {
    static func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

    /// A blocking loopback socket driving a `Connection.Instance` (the test's stand-in for the shell).
    struct Driver {
        var fd: Int32
        var conn: Connection.Instance
        var start: Instant
        var events: [Connection.Directive] = []
        var data: [Connection.StreamID: [UInt8]] = [:]

        static func monotonic() -> Instant {
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            return Instant(nanoseconds: Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec))
        }

        mutating func apply(_ ds: [Connection.Directive]) {
            for d in ds {
                switch d {
                case .send(let bytes):
                    var off = 0
                    while off < bytes.count {
                        let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                        if n <= 0 { return }
                        off += n
                    }
                case .data(let id, let s):
                    data[id, default: []] += s
                    apply(conn.consumed(stream: id, count: s.count, now: Self.monotonic()))
                    events.append(d)
                default:
                    events.append(d)
                }
            }
        }

        /// Runs the socket until `done` or the timeout.
        mutating func run(seconds: Double, until done: (inout Driver) -> Bool) {
            let deadline = Self.monotonic() + .milliseconds(Int64(seconds * 1000))
            var buf = [UInt8](repeating: 0, count: 65536)
            while Self.monotonic() < deadline && !done(&self) && !conn.isClosed {
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                if poll(&p, 1, 20) > 0 {
                    let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if n <= 0 { apply(conn.onEndOfInput(now: Self.monotonic())); break }
                    apply(conn.onBytes(Array(buf[0..<n]), now: Self.monotonic()))
                }
                if let t = conn.nextDeadline, Self.monotonic() >= t { apply(conn.onTimer(now: Self.monotonic())) }
            }
        }
    }

    static let identity = try! Ed25519PrivateKey(seed: [UInt8](repeating: 0x42, count: 32))

    static func settings() -> Connection.Settings {
        Connection.Settings(protocols: [Identify.protocolID, Identify.pushProtocolID])
    }

    /// Answers the peer's identify requests and exercises ours; returns when both worked.
    static func exercise(_ d: inout Driver) throws {
        d.run(seconds: 5) { $0.conn.isEstablished }
        try #require(d.conn.isEstablished, "handshake did not complete: \(d.events)")
        let openedId = d.conn.openStream(protocols: [Identify.protocolID], now: Driver.monotonic())
        let (idStream, o1) = try #require(openedId)
        d.apply(o1)
        let openedPing = d.conn.openStream(protocols: [Ping.protocolID], now: Driver.monotonic())
        let (pingStream, o2) = try #require(openedPing)
        d.apply(o2)
        var ping = Ping.Instance(rng: SeededRandom(seed: 1))
        let payload = ping.ping(now: Driver.monotonic())!
        d.apply(d.conn.write(stream: pingStream, bytes: payload, now: Driver.monotonic()).directives)
        var answered = Set<Connection.StreamID>()
        d.run(seconds: 5) { d in
            for case .streamOpened(let id, Identify.protocolID, true) in d.events where !answered.contains(id) {
                answered.insert(id)
                let me = Identify.Message(protocolVersion: "/lattica/1.0.0", agentVersion: "lattica-swift-interop",
                                          publicKey: PublicKeyProto(type: .ed25519, data: identity.publicKey.bytes).encoded(),
                                          protocols: [Identify.protocolID, Ping.protocolID])
                d.apply(d.conn.write(stream: id, bytes: me.framed(), now: Driver.monotonic()).directives)
                d.apply(d.conn.closeWrite(stream: id, now: Driver.monotonic()))
            }
            return d.data[pingStream]?.count == 32 && d.events.contains(.finished(idStream))
        }
        #expect(d.data[pingStream] == payload, "events: \(d.events), closed: \(String(describing: d.conn.closeReason))")
        var reader = Identify.Reader()
        let decoded = reader.onBytes(d.data[idStream] ?? [])
        let info = try #require(decoded)
        let message = try info.get()
        print("interop: remote identify agent=\(message.agentVersion ?? "-") protocols=\(message.protocols)")
        #expect(message.peerId == d.conn.remotePeer)
        #expect(message.protocols.contains(Identify.protocolID))
        #expect(!d.conn.isClosed, "closed: \(String(describing: d.conn.closeReason))")
    }

    @Test func dialsARealLibp2pPeer_authenticates_identifiesAndPings() throws {
        guard let spec = Self.env("LATTICA_INTEROP_DIAL") else { return }   // skipped without a peer
        let parts = spec.split(separator: "/")
        let hostPort = parts[0].split(separator: ":")
        let expected = try PeerId(string: String(parts[1]))
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(hostPort[1])!).bigEndian
        inet_pton(AF_INET, String(hostPort[0]), &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        try #require(rc == 0, "connect failed")
        var d = Driver(fd: fd, conn: Connection.Instance(role: .dialer(expectedPeer: expected), identity: Self.identity,
                                                          settings: Self.settings(), rng: SeededRandom(seed: 7)),
                       start: Driver.monotonic())
        d.apply(d.conn.start(now: Driver.monotonic()))
        try Self.exercise(&d)
        #expect(d.conn.remotePeer == expected)
        #expect(d.conn.rtt != nil)
    }

    static func dialLoopback(_ spec: String) throws -> (Int32, PeerId) {
        let parts = spec.split(separator: "/")
        let hostPort = parts[0].split(separator: ":")
        let expected = try PeerId(string: String(parts[1]))
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(hostPort[1])!).bigEndian
        inet_pton(AF_INET, String(hostPort[0]), &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        try #require(rc == 0, "connect failed")
        return (fd, expected)
    }

    static func listenOnce(_ port: UInt16) throws -> Int32 {
        let lfd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(lfd) }
        var one: Int32 = 1
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(port).bigEndian
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(lfd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        try #require(bound == 0, "bind failed: errno \(errno)")
        try #require(Glibc.listen(lfd, 4) == 0, "listen failed: errno \(errno)")
        var p = pollfd(fd: lfd, events: Int16(POLLIN), revents: 0)
        try #require(poll(&p, 1, 30_000) > 0, "nobody dialled within 30 s")
        return accept(lfd, nil, nil)
    }

    /// py-libp2p (`pylibp2p_peer.py listen`): 300 KiB through its `/echo/1.0.0`, beyond one window.
    @Test func echoesThroughAPyLibp2pPeer_beyondOneYamuxWindow() throws {
        guard let spec = Self.env("LATTICA_INTEROP_ECHO_DIAL") else { return }
        let (fd, expected) = try Self.dialLoopback(spec)
        defer { close(fd) }
        var d = Driver(fd: fd, conn: Connection.Instance(role: .dialer(expectedPeer: expected), identity: Self.identity,
                                                          settings: Self.settings(), rng: SeededRandom(seed: 9)),
                       start: Driver.monotonic())
        d.apply(d.conn.start(now: Driver.monotonic()))
        d.run(seconds: 5) { $0.conn.isEstablished }
        try #require(d.conn.isEstablished, "handshake did not complete: \(d.events)")
        let opened = d.conn.openStream(protocols: ["/echo/1.0.0"], now: Driver.monotonic())
        let (id, o) = try #require(opened)
        d.apply(o)
        var rng = SeededRandom(seed: 3)
        let payload = (0..<300_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var sent = 0
        d.run(seconds: 10) { d in
            if sent < payload.count {
                let w = d.conn.write(stream: id, bytes: payload[sent..<min(payload.count, sent + 65536)], now: Driver.monotonic())
                sent += w.accepted
                d.apply(w.directives)
                if sent == payload.count { d.apply(d.conn.closeWrite(stream: id, now: Driver.monotonic())) }
            }
            return d.data[id]?.count == payload.count
        }
        #expect(d.data[id] == payload, "got \(d.data[id]?.count ?? 0) bytes; closed: \(String(describing: d.conn.closeReason))")
        #expect(d.conn.remotePeer == expected)
    }

    /// py-libp2p (`pylibp2p_peer.py dial`) dials us and sends a line through our `/echo/1.0.0`.
    @Test func servesEchoToAPyLibp2pPeer_thatDialsUs() throws {
        guard let portText = Self.env("LATTICA_INTEROP_ECHO_LISTEN"), let port = UInt16(portText) else { return }
        let fd = try Self.listenOnce(port)
        defer { close(fd) }
        var s = Self.settings()
        s.protocols.append("/echo/1.0.0")
        var d = Driver(fd: fd, conn: Connection.Instance(role: .listener, identity: Self.identity, settings: s, rng: SeededRandom(seed: 10)),
                       start: Driver.monotonic())
        d.apply(d.conn.start(now: Driver.monotonic()))
        var echoed = 0
        var finished = Set<Connection.StreamID>()
        d.run(seconds: 10) { d in
            for case .streamOpened(let id, "/echo/1.0.0", true) in d.events where d.data[id].map({ $0.count > echoed }) ?? false {
                let bytes = Array(d.data[id]![echoed...])
                echoed += bytes.count
                d.apply(d.conn.write(stream: id, bytes: bytes, now: Driver.monotonic()).directives)
            }
            for case .finished(let id) in d.events where !finished.contains(id) {
                finished.insert(id)
                d.apply(d.conn.closeWrite(stream: id, now: Driver.monotonic()))
            }
            return !finished.isEmpty && echoed > 0
        }
        #expect(echoed == "hello from py-libp2p".utf8.count, "events: \(d.events)")
    }

    @Test func acceptsARealLibp2pPeer_thatDialsUs() throws {
        guard let portText = Self.env("LATTICA_INTEROP_LISTEN"), let port = UInt16(portText) else { return }
        let lfd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(lfd) }
        var one: Int32 = 1
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(port).bigEndian
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(lfd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        try #require(bound == 0, "bind failed: errno \(errno)")
        try #require(Glibc.listen(lfd, 4) == 0, "listen failed: errno \(errno)")
        let line = "interop: listening on 127.0.0.1:\(port) as \(PeerId(ed25519PublicKey: Self.identity.publicKey.bytes))\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
        var p = pollfd(fd: lfd, events: Int16(POLLIN), revents: 0)
        try #require(poll(&p, 1, 30_000) > 0, "nobody dialled within 30 s")
        let fd = accept(lfd, nil, nil)
        defer { close(fd) }
        var d = Driver(fd: fd, conn: Connection.Instance(role: .listener, identity: Self.identity,
                                                          settings: Self.settings(), rng: SeededRandom(seed: 8)),
                       start: Driver.monotonic())
        d.apply(d.conn.start(now: Driver.monotonic()))
        try Self.exercise(&d)
    }
}
#endif
