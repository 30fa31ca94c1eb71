import Foundation
import LatticaAPI
import LatticaCore
import LatticaNAT
import LatticaStore
import LatticaUV
import Testing
@testable import LatticaNode

/// Circuit Relay v2 and DCUtR between daemons in this process on loopback: R serves as the relay,
/// A reserves on it, B reaches A through it (and then directly, when DCUtR may punch).
@Suite(.serialized) struct RelayTests {
    struct Net {
        var relay: Daemon
        var a: Daemon
        var b: Daemon
        var all: [Daemon] { [relay, a, b] }
    }

    func start(_ tmp: TempDir, punch: Bool, hop: [String: TOML.Value] = [:]) async throws -> Net {
        var rc = NodeConfig(dataDir: tmp.path + "/relay")
        rc.metricsAddr = nil
        rc.sections["relay"] = ["hop": .string("on")].merging(hop) { $1 }
        let relay = try await Daemon.start(config: rc)
        let boot = relay.listenAddrs[0].description
        func node(_ name: String) async throws -> Daemon {
            var c = NodeConfig(dataDir: tmp.path + "/" + name)
            c.metricsAddr = nil
            c.bootstrap = [boot]
            // DHT clients: the relay's routing table does not hand A's direct address to B.
            c.dhtMode = "client"
            c.sections["relay"] = ["reserve": .string("on"), "hop": .string("off")]
            c.sections["dcutr"] = ["enabled": .bool(punch), "private_addrs": .bool(true)]
            c.sections["echo"] = ["max_bytes": .integer(1 << 20)]
            return try await Daemon.start(config: c)
        }
        return Net(relay: relay, a: try await node("a"), b: try await node("b"))
    }

    /// Polls `cond` on the loop thread until it holds (or fails the test after `seconds`).
    func until(_ d: Daemon, _ what: String, seconds: Double = 15, _ cond: @escaping @Sendable (Daemon) -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await d.loop.submit({ _ in cond(d) }) { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("timed out waiting for \(what)")
        throw SwarmError("timed out: \(what)")
    }

    func circuitAddr(_ net: Net) -> Multiaddr {
        net.relay.listenAddrs[0].appending(.p2pCircuit).appending(.p2p(net.a.peerId))
    }

    func peers(_ d: Daemon) async throws -> [PeerEntry] {
        try await d.loop.submit { _ in d.swarm!.peerEntries().peers }
    }

    @Test func aPeerBehindARelay_isReachedThroughIt_andStreamsWork() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let net = try await start(tmp, punch: false)
        defer { Task { for d in net.all { await d.stop() } } }
        try await until(net.a, "A's reservation") { $0.service(RelayService.self)!.held[net.relay.peerId] != nil }
        // A advertises its circuit address (identify, and so the DHT).
        let advertised = try await net.a.loop.submit { _ in net.a.swarm!.advertisedAddrs }
        #expect(advertised.contains(net.relay.listenAddrs[0].appending(.p2pCircuit)))

        let addr = circuitAddr(net)
        let who: PeerId = try await net.b.onLoop { swarm, done in swarm.dial(addr) { done($0) } }
        #expect(who == net.a.peerId)
        let entry = try #require(try await peers(net.b).first { $0.peerId == net.a.peerId.description })
        #expect(entry.transport == "relayed" && entry.via == net.relay.peerId.description && entry.establishedBy == "relay")
        let back = try #require(try await peers(net.a).first { $0.peerId == net.b.peerId.description })
        #expect(back.transport == "relayed" && back.direction == "inbound")

        // A request through the circuit, both ways, and a large one (flow control through the pipe).
        let payload = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let echoed: [UInt8] = try await net.b.onLoop { swarm, done in
            swarm.request(net.a.peerId, EchoService.protocolID, payload, timeout: .seconds(20)) { done($0) }
        }
        #expect(echoed == payload)
        let small: [UInt8] = try await net.a.onLoop { swarm, done in
            swarm.request(net.b.peerId, EchoService.protocolID, Array("hi".utf8), timeout: .seconds(10)) { done($0) }
        }
        #expect(small == Array("hi".utf8))
        let circuits = try await net.relay.loop.submit { _ in net.relay.service(RelayService.self)!.circuits.count }
        #expect(circuits == 1)
        // Without DCUtR the connection stays relayed.
        #expect(try await peers(net.b).first { $0.peerId == net.a.peerId.description }?.transport == "relayed")
        for d in net.all { await d.stop() }
    }

    @Test func dcutr_replacesTheRelayedConnectionWithADirectOne() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let net = try await start(tmp, punch: true)
        defer { Task { for d in net.all { await d.stop() } } }
        try await until(net.a, "A's reservation") { $0.service(RelayService.self)!.held[net.relay.peerId] != nil }
        let addr = circuitAddr(net)
        _ = try await net.b.onLoop { swarm, done in swarm.dial(addr) { done($0) } } as PeerId
        // A (the side that accepted the circuit) starts the punch; the direct connection replaces the circuit.
        try await until(net.b, "a direct connection to A") { d in
            d.swarm!.connection(to: net.a.peerId).map { !$0.isRelayed && $0.established } ?? false
        }
        let entry = try #require(try await peers(net.b).first { $0.peerId == net.a.peerId.description })
        #expect(entry.transport == "direct")
        #expect(entry.establishedBy == "dcutr" || entry.establishedBy == "accept")
        // On loopback the first attempt gets through. The punch's initiator (DCUtR's B, our
        // net.a) dials so soon after its SYNC that its SYN may reach net.b's listener before the
        // SYNC does; net.b must take it as the punch (a retry meant both waited as responder).
        let attempt = try await net.a.loop.submit { _ in net.a.service(DCUtRService.self)!.lastUpgradeAttempt }
        #expect(attempt == 1)
        // Streams use the direct connection now.
        let echoed: [UInt8] = try await net.b.onLoop { swarm, done in
            swarm.request(net.a.peerId, EchoService.protocolID, Array("direct".utf8), timeout: .seconds(10)) { done($0) }
        }
        #expect(echoed == Array("direct".utf8))
        // The retired circuit goes away on the relay.
        try await until(net.relay, "the circuit to close") { $0.service(RelayService.self)!.circuits.isEmpty }
        for d in net.all { await d.stop() }
    }

    /// The birthday punch between a "port-restricted" and a "symmetric" side, as STUN would have
    /// classified them (loopback has no NAT, so the holes are refused and the first probe gets
    /// through: this checks the negotiation, the roles and the schedule, not the odds). The
    /// accepting side offers; with full cone on one side the plan does not apply and DCUtR runs.
    @Test(arguments: [true, false]) func spray_upgradesTheRelayedConnection_whenTheNATsCallForIt(sprayApplies: Bool) async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let net = try await start(tmp, punch: true)
        defer { Task { for d in net.all { await d.stop() } } }
        for (d, mapping, filtering) in [(net.a, NAT.Behaviour.endpointIndependent, sprayApplies ? NAT.Behaviour.addressAndPortDependent : .endpointIndependent),
                                        (net.b, .addressAndPortDependent, .addressAndPortDependent)] {
            try await d.loop.submit { _ in
                let s = d.service(DCUtRService.self)!
                s.sprayConfig.holes = 16
                s.sprayConfig.probes = 4
                d.swarm!.setNATBehaviour(mapping: mapping, filtering: filtering)
            }
        }
        try await until(net.a, "A's reservation") { $0.service(RelayService.self)!.held[net.relay.peerId] != nil }
        _ = try await net.b.onLoop { swarm, done in swarm.dial(circuitAddr(net)) { done($0) } } as PeerId
        try await until(net.b, "a direct connection to A") { d in
            d.swarm!.connection(to: net.a.peerId).map { !$0.isRelayed && $0.established } ?? false
        }
        let methods = try await net.a.loop.submit { _ in net.a.service(DCUtRService.self)!.upgradesByMethod }
        #expect(methods == [sprayApplies ? "spray" : "dcutr": 1])
        // `peers` names the punch that made the connection (a SYN at a listener is still the punch).
        let entry = try #require(try await peers(net.b).first { $0.peerId == net.a.peerId.description })
        #expect(entry.establishedBy == (sprayApplies ? "spray" : "dcutr"))
        // B is still the Noise initiator of the direct connection (A accepted the circuit).
        let isDialer = try await net.b.loop.submit { _ in net.b.swarm!.connection(to: net.a.peerId)!.instance.isDialer }
        #expect(isDialer)
        let echoed: [UInt8] = try await net.b.onLoop { swarm, done in
            swarm.request(net.a.peerId, EchoService.protocolID, Array("direct".utf8), timeout: .seconds(10)) { done($0) }
        }
        #expect(echoed == Array("direct".utf8))
        for d in net.all { await d.stop() }
    }

    @Test func aPeerPumpingData_isCutOffAtTheCircuitLimit() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let limit = 1 << 20
        let net = try await start(tmp, punch: false, hop: ["circuit_bytes": .integer(Int64(limit))])
        defer { Task { for d in net.all { await d.stop() } } }
        try await until(net.a, "A's reservation") { $0.service(RelayService.self)!.held[net.relay.peerId] != nil }
        let sink = "/lattica/test/sink/1.0.0"
        let received = LockedBox(0)
        try await net.a.loop.submit { _ in
            net.a.swarm!.handleRawStreams(sink) { r in r.onData = { bytes in received.withLock { $0 += bytes.count } } }
        }
        let addr = circuitAddr(net)
        _ = try await net.b.onLoop { swarm, done in swarm.dial(addr) { done($0) } } as PeerId
        // B writes 16 MiB as fast as the circuit takes it.
        let ended = LockedBox<String?>(nil)
        try await net.b.loop.submit { _ in
            guard let r = net.b.swarm!.openRawStream(net.a.peerId, sink) else { throw SwarmError("no stream") }
            let pump = Pump(r, chunks: 256)
            r.onWritable = { pump.run() }
            r.onEnd = { e in ended.withLock { $0 = e ?? "finished" } }
            pump.run()
        }
        // The relay resets the circuit: the inner connection (and so B's stream) ends.
        try await until(net.relay, "the circuit to be cut") { $0.service(RelayService.self)!.circuitsClosed["data_limit"] == 1 }
        try await until(net.b, "B's stream to end") { _ in ended.withLock { $0 } != nil }
        let forwarded = try await net.relay.loop.submit { _ in net.relay.service(RelayService.self)!.hopState.circuits.count }
        #expect(forwarded == 0)
        // A saw at most the limit (less the inner connection's own framing).
        #expect(received.withLock { $0 } <= limit)
        #expect(received.withLock { $0 } > limit / 2, "the circuit carried data before the cut")
        #expect(received.withLock { $0 } < 16 << 20)
        for d in net.all { await d.stop() }
    }

    @Test func reservationFloods_areRefusedAndCounted() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        var rc = NodeConfig(dataDir: tmp.path + "/relay")
        rc.metricsAddr = nil
        rc.sections["relay"] = ["hop": .string("on"), "max_reservations_per_ip": .integer(2)]
        let relay = try await Daemon.start(config: rc)
        defer { Task { await relay.stop() } }
        var clients: [Daemon] = []
        for i in 0..<4 {
            var c = NodeConfig(dataDir: tmp.path + "/c\(i)")
            c.metricsAddr = nil
            c.bootstrap = [relay.listenAddrs[0].description]
            c.sections["relay"] = ["reserve": .string("on"), "hop": .string("off")]
            clients.append(try await Daemon.start(config: c))
        }
        let started = clients
        defer { Task { for d in started { await d.stop() } } }
        // Four peer ids from one IP: two get a slot.
        try await until(relay, "two reservations") { $0.service(RelayService.self)!.hopState.reservations.count == 2 }
        // A refresh faster than the minimum interval is refused too (one peer asking again at once).
        let holder = try await relay.loop.submit { _ in relay.service(RelayService.self)!.hopState.reservations.keys.first! }
        let again = try await relay.loop.submit { _ in
            var st = relay.service(RelayService.self)!.hopState
            return st.reserve(holder, ip: [127, 0, 0, 1], now: relay.loop.now)
        }
        guard case .failure(.refreshTooSoon) = again else { Issue.record("refresh accepted: \(again)"); return }
        #expect(try await relay.loop.submit { _ in relay.service(RelayService.self)!.hopState.reservations.count } == 2)
        for d in started { await d.stop() }
        await relay.stop()
    }
}

/// A value shared between the loop thread and the test.
final class LockedBox<T: Sendable>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ v: T) { value = v }
    func withLock<R>(_ f: (inout T) -> R) -> R { lock.lock(); defer { lock.unlock() }; return f(&value) }
}

/// Writes `chunks` × 64 KiB into a raw stream as fast as it takes them.
final class Pump {
    let stream: RawStream
    var left: Int
    let chunk = [UInt8](repeating: 7, count: 64 << 10)
    init(_ s: RawStream, chunks: Int) { stream = s; left = chunks }
    func run() {
        while left > 0, stream.writableBytes > 0 {
            let n = stream.write(chunk.prefix(stream.writableBytes))
            if n == 0 { break }
            if n == chunk.count { left -= 1 }
        }
    }
}
