import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import LatticaCore
import LatticaUV
import Synchronization

/// The benchmark behind `lattica-bench relay`: round trip and throughput to a peer A over a
/// circuit through relay R, against the same over a direct connection, in one run. Both sides use
/// the same API (Swarm.request with an echo payload; one raw stream pumped at full speed), the
/// same payload and size, daemons in this process on loopback: the difference is the relay hop
/// (one more Noise + yamux layer at each end, two more TCP legs, R's pipe).
public enum RelayBenchmark {
    public struct Options: Sendable {
        public var roundTrips = 2_000
        public var payload = 64
        public var streamBytes = 64 << 20
        public init() {}
    }

    static let echo = "/lattica-bench/relay-echo/1.0.0"
    static let sink = "/lattica-bench/relay-sink/1.0.0"

    public static func run(_ o: Options) async throws -> [(String, Double)] {
        let dir = (ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp") + "/lattica-relay-bench-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rc = NodeConfig(dataDir: dir + "/r")
        rc.metricsAddr = nil
        rc.logLevel = .error
        rc.sections["relay"] = ["hop": .string("on")]
        let relay = try await Daemon.start(config: rc)
        func node(_ name: String) async throws -> Daemon {
            var c = NodeConfig(dataDir: dir + "/" + name)
            c.metricsAddr = nil
            c.logLevel = .error
            c.dhtMode = "client"
            c.bootstrap = [relay.listenAddrs[0].description]
            c.sections["relay"] = ["reserve": .string("on"), "hop": .string("off")]
            c.sections["dcutr"] = ["enabled": .bool(false)]
            return try await Daemon.start(config: c)
        }
        let a = try await node("a"), viaRelay = try await node("b"), direct = try await node("c")
        defer { Task { for d in [relay, a, viaRelay, direct] { await d.stop() } } }
        let received = Counter()
        try await a.loop.submit { _ in
            a.swarm!.handleRequests(Self.echo, maxBytes: 1 << 20) { _, req, respond in respond(req) }
            a.swarm!.handleRawStreams(Self.sink) { r in
                r.onData = { received.add($0.count) }
                r.onEnd = { _ in received.finish() }
            }
        }
        for _ in 0..<500 {
            if try await a.loop.submit({ _ in a.service(RelayService.self)?.held.isEmpty == false }) { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        let circuit = relay.listenAddrs[0].appending(.p2pCircuit).appending(.p2p(a.peerId))
        _ = try await viaRelay.onLoop { s, done in s.dial(circuit) { done($0) } } as PeerId
        _ = try await direct.onLoop { s, done in s.dial(a.listenAddrs[0]) { done($0) } } as PeerId
        guard try await viaRelay.loop.submit({ _ in viaRelay.swarm!.isRelayed(a.peerId) }) else { throw SwarmError("the circuit is not relayed") }

        var out: [(String, Double)] = []
        for (name, d) in [("direct", direct), ("relayed", viaRelay)] {
            let payload = [UInt8](repeating: 0x5A, count: o.payload)
            var rtts: [Double] = []
            for _ in 0..<o.roundTrips {
                let t0 = ContinuousClock.now
                let back: [UInt8] = try await d.onLoop { s, done in s.request(a.peerId, Self.echo, payload, timeout: .seconds(10)) { done($0) } }
                rtts.append((ContinuousClock.now - t0).secondsDouble * 1e6)
                guard back.count == payload.count else { throw SwarmError("echo lost bytes") }
            }
            rtts.sort()
            out.append(("rtt_us_p50_request_\(o.payload)B_\(name)", rtts[rtts.count / 2]))
            out.append(("rtt_us_p99_request_\(o.payload)B_\(name)", rtts[rtts.count * 99 / 100]))

            received.reset()
            let t0 = ContinuousClock.now
            try await d.loop.submit { _ in
                guard let r = d.swarm!.openRawStream(a.peerId, Self.sink) else { throw SwarmError("no stream") }
                let pump = BenchPump(r, bytes: o.streamBytes)
                r.onWritable = { pump.run() }
                pump.run()
            }
            try await received.wait(for: o.streamBytes)
            let s = (ContinuousClock.now - t0).secondsDouble
            out.append(("stream_MBps_one_raw_stream_\(o.streamBytes >> 20)MiB_\(name)", Double(o.streamBytes) / s / 1e6))
        }
        return out
    }

    /// Bytes A received, shared with the benchmark's task.
    final class Counter: Sendable {
        private let state = Mutex<(n: Int, waiter: (Int, CheckedContinuation<Void, Never>)?)>((0, nil))
        func add(_ k: Int) {
            let resume: CheckedContinuation<Void, Never>? = state.withLock { s in
                s.n += k
                guard let (want, c) = s.waiter, s.n >= want else { return nil }
                s.waiter = nil
                return c
            }
            resume?.resume()
        }
        func finish() {}
        func reset() { state.withLock { $0.n = 0 } }
        func wait(for want: Int) async throws {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now: Bool = state.withLock { s in
                    if s.n >= want { return true }
                    s.waiter = (want, c)
                    return false
                }
                if now { c.resume() }
            }
        }
    }

    final class BenchPump {
        let stream: RawStream
        var left: Int
        let chunk = [UInt8](repeating: 7, count: 256 << 10)
        init(_ s: RawStream, bytes: Int) { stream = s; left = bytes }
        func run() {
            while left > 0, stream.writableBytes > 0 {
                let n = stream.write(chunk.prefix(min(left, stream.writableBytes)))
                if n == 0 { break }
                left -= n
            }
            if left == 0 { left = -1; stream.closeWrite() }
        }
    }
}
