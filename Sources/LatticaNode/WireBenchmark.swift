import LatticaCore
import LatticaCrypto
import LatticaUV
import LatticaWire
import Logging

/// The transport benchmark behind `lattica-bench wire`: two swarms in this process, each on its own
/// libuv loop thread, over loopback TCP through the whole stack (multistream, Noise, yamux).
/// Prints nothing itself; returns `(metric, value)` pairs. A phase whose count is 0 is skipped.
///
/// What each phase measures (and what Scripts/bench/network.sh puts it beside):
/// - `rtt_*`: raw-stream echo, one open stream, one message in flight (no Lattica counterpart);
/// - `rr_*`: the request/response API a protocol handler uses (`Swarm.request`, one new stream per
///   request), one request at a time, each issued when the previous answer arrives; beside
///   Lattica's RPC call (`Bench.echo`) made the same way;
/// - `requests_per_s_N_in_flight`: the same API with a sustained window of N outstanding requests
///   (a new one is issued whenever one completes), beside Lattica's RPC calls in the same window;
/// - `stream_MBps`: one raw stream with back-pressure, beside Lattica's RPC stream call.
///
/// Swarm API used: `request`, `handleRequests`, `openRawStream`, `handleRawStreams`, plus
/// setup in `Node` (with `IdentifyService` on the bare swarm) and the dial phase (`dial`, the `.identified` peer event, `disconnect`, `byPeer`).
public enum WireBenchmark {
    public struct Options: Sendable {
        public var dials = 200
        /// Raw-stream echo round trips on one open stream.
        public var roundTrips = 20_000
        /// Sequential request/response round trips (`Swarm.request`, one at a time).
        public var rrRoundTrips = 5_000
        public var payload = 64
        /// Requests in the window phase, with `inFlight` outstanding at all times (sustained window).
        public var requests = 20_000
        public var inFlight = 1_000
        public var streamBytes = 256 << 20
        /// Both nodes on one loop thread: measures the stack without the cross-thread wake-ups
        /// (as `lattica-bench uv` measures raw libuv); metric names get a `_shared_loop` suffix.
        public var sharedLoop = false
        /// The loops' busy polling (`EventLoop.busyPoll`); the daemon's default unless set.
        public var busyPollMicros = NodeConfig.defaultBusyPollMicros
        public init() {}
    }

    static let echo = "/lattica-bench/echo/1.0.0"
    static let sink = "/lattica-bench/sink/1.0.0"
    static let rr = "/lattica-bench/rr/1.0.0"

    public static func run(_ o: Options) async throws -> [(String, Double)] {
        let busyPoll = Duration.microseconds(o.busyPollMicros)
        let server = Node(loop: EventLoop(name: "bench-server", busyPoll: busyPoll))
        let client = Node(loop: o.sharedLoop ? server.loop : EventLoop(name: "bench-client", busyPoll: busyPoll))
        defer { server.loop.shutdown(); client.loop.shutdown() }
        let suffix = o.sharedLoop ? "_shared_loop" : ""
        let addr = try await server.loop.submit { _ in try server.listen() }
        _ = try await client.loop.submit { _ in client.swarm.listenAddrs = [] }
        var out: [(String, Double)] = []

        // 1. connect + Noise + yamux (+ identify), fresh connection each time.
        var established: [Double] = [], identified: [Double] = []
        for _ in 0..<o.dials {
            let (e, i): (Double, Double) = try await client.loop.submitCallback { loop, done in
                let t0 = loop.now
                var tEst: Double?
                client.onIdentified = {
                    client.onIdentified = nil
                    let tId = (loop.now - t0).secondsDouble * 1000
                    client.swarm.disconnect(server.swarm.localPeer)
                    done(.success((tEst ?? tId, tId)))
                }
                client.swarm.dial(addr) { r in
                    switch r {
                    case .success: tEst = (loop.now - t0).secondsDouble * 1000
                    case .failure(let e): done(.failure(e))
                    }
                }
            }
            established.append(e); identified.append(i)
            // Wait until the server side has dropped the connection too.
            while try await server.loop.submit({ _ in server.swarm.byPeer.count }) > 0 { await Task.yield() }
        }
        if o.dials > 0 {
            out.append(("connect_established_ms\(suffix)", median(established)))
            out.append(("connect_identified_ms\(suffix)", median(identified)))
        }

        // A connection for the rest.
        let _: PeerId = try await client.loop.submitCallback { _, done in client.swarm.dial(addr) { done($0.mapError { $0 }) } }
        let peer = server.swarm.localPeer

        // 2. Raw-stream echo: round trip of `payload` bytes on one open stream.
        if o.roundTrips > 0 {
            let rtts: [Double] = try await client.loop.submitCallback { loop, done in
                guard let s = client.swarm.openRawStream(peer, echo) else { done(.failure(SwarmError("no stream"))); return }
                let msg = [UInt8](repeating: 0xAB, count: o.payload)
                var got = 0, t0 = loop.now
                var samples: [Double] = []
                samples.reserveCapacity(o.roundTrips)
                s.onData = { b in
                    got += b.count
                    guard got >= o.payload else { return }
                    got -= o.payload
                    samples.append((loop.now - t0).secondsDouble * 1e6)
                    if samples.count == o.roundTrips { s.closeWrite(); done(.success(samples)); return }
                    t0 = loop.now
                    s.write(msg)
                }
                s.onEnd = { e in if samples.count < o.roundTrips { done(.failure(SwarmError(e ?? "ended"))) } }
                s.write(msg)
            }
            out.append(("rtt_\(o.payload)B_median_us\(suffix)", median(rtts)))
            out.append(("rtt_\(o.payload)B_p99_us\(suffix)", percentile(rtts, 0.99)))
        }

        // One request first, not counted (Lattica's anchor warms up the same way).
        if o.rrRoundTrips > 0 || o.requests > 0 {
            let _: [UInt8] = try await client.loop.submitCallback { _, done in
                client.swarm.request(peer, rr, [UInt8](repeating: 1, count: o.payload)) { done($0.mapError { $0 }) }
            }
        }

        // 3. Request/response round trip: one request at a time, the next issued from the
        //    completion of the previous one; each sample is issue → response, in µs.
        if o.rrRoundTrips > 0 {
            let samples: [Double] = try await client.loop.submitCallback { loop, done in
                let req = [UInt8](repeating: 1, count: o.payload)
                var samples: [Double] = []
                samples.reserveCapacity(o.rrRoundTrips)
                func issue() {
                    let t0 = loop.now
                    client.swarm.request(peer, rr, req) { r in
                        switch r {
                        case .failure(let e): done(.failure(e))
                        case .success(let resp):
                            guard resp.count == o.payload else { done(.failure(SwarmError("short response"))); return }
                            samples.append((loop.now - t0).secondsDouble * 1e6)
                            samples.count == o.rrRoundTrips ? done(.success(samples)) : issue()
                        }
                    }
                }
                issue()
            }
            out.append(("rr_\(o.payload)B_median_us\(suffix)", median(samples)))
            out.append(("rr_\(o.payload)B_p99_us\(suffix)", percentile(samples, 0.99)))
        }

        // 4. Requests with a sustained window of `inFlight` outstanding on one connection (one
        //    yamux stream each): a new request is issued whenever one completes.
        if o.requests > 0 {
            let rps: Double = try await client.loop.submitCallback { loop, done in
                let req = [UInt8](repeating: 1, count: o.payload)
                var sent = 0, finished = 0, failed = 0
                let t0 = loop.now
                func issue() {
                    guard sent < o.requests else { return }
                    sent += 1
                    client.swarm.request(peer, rr, req) { r in
                        if case .failure(let e) = r { if failed == 0 { print("first failure:", e) }; failed += 1 }
                        finished += 1
                        if finished == o.requests {
                            failed > 0 ? done(.failure(SwarmError("\(failed) requests failed")))
                                       : done(.success(Double(o.requests) / (loop.now - t0).secondsDouble))
                        } else { issue() }
                    }
                }
                for _ in 0..<min(o.inFlight, o.requests) { issue() }
            }
            out.append(("requests_per_s_\(o.inFlight)_in_flight\(suffix)", rps))
        }

        // 5. One stream, `streamBytes`, with back-pressure; the sink acknowledges the end.
        guard o.streamBytes > 0 else { return out }
        let mbps: Double = try await client.loop.submitCallback { loop, done in
            guard let s = client.swarm.openRawStream(peer, sink) else { done(.failure(SwarmError("no stream"))); return }
            let chunk = [UInt8](repeating: 0x5A, count: 256 * 1024)
            var remaining = o.streamBytes
            let t0 = loop.now
            func pump() {
                while remaining > 0 {
                    let room = s.writableBytes
                    if room == 0 { return }  // window full: wait for onWritable
                    remaining -= s.write(chunk[..<min(chunk.count, remaining, room)])
                }
                s.closeWrite()
            }
            s.onWritable = { pump() }
            s.onData = { _ in done(.success(Double(o.streamBytes) / (loop.now - t0).secondsDouble / 1e6)) }
            s.onEnd = { e in if let e { done(.failure(SwarmError(e))) } }
            pump()
        }
        out.append(("stream_MBps\(suffix)", mbps))
        if o.streamBytes >= 1 << 20 { out.append(("aead_seal_MBps_one_core", aeadSealMBps())) }
        return out
    }

    /// The ceiling under the stream figure: libsodium's ChaCha20-Poly1305 sealing 64 KiB Noise
    /// frames in place on one core, nothing else (the sender seals, the receiver opens, each on
    /// its own core, plus TCP and the stack).
    static func aeadSealMBps() -> Double {
        let key = [UInt8](repeating: 7, count: 32)
        var frame = [UInt8](repeating: 0x5A, count: Noise.maxPlaintextLength + Noise.tagLength)
        let total = 512 << 20
        let t0 = ContinuousClock.now
        var done = 0, nonce: UInt64 = 0
        key.withUnsafeBytes { k in
            frame.withUnsafeMutableBytes { buf in
                while done < total {
                    ChaChaPoly.sealInPlace(key: k, nonce: nonce, buffer: buf.baseAddress!, count: Noise.maxPlaintextLength,
                                           ad: UnsafeRawBufferPointer(start: nil, count: 0))
                    nonce += 1
                    done += Noise.maxPlaintextLength
                }
            }
        }
        let d = (ContinuousClock.now - t0).components
        return Double(done) / (Double(d.seconds) + Double(d.attoseconds) / 1e18) / 1e6
    }

    static func median(_ v: [Double]) -> Double { percentile(v, 0.5) }
    static func percentile(_ v: [Double], _ p: Double) -> Double {
        guard !v.isEmpty else { return .nan }
        let s = v.sorted()
        return s[min(s.count - 1, Int(Double(s.count - 1) * p + 0.5))]
    }

    /// One side: a loop and a swarm with the benchmark protocols.
    final class Node: @unchecked Sendable {
        let loop: EventLoop
        let swarm: Swarm
        let identify: IdentifyService
        var listener: TCPListener?
        var onIdentified: (() -> Void)?

        init(loop: EventLoop) {
            self.loop = loop
            var log = Logger(label: "lattica.bench")
            log.logLevel = .error
            swarm = Swarm(loop: loop, identity: .generate(), settings: Swarm.Settings(
                protocolVersion: "/lattica/1.0.0", agentVersion: "lattica-bench", maxConnections: 10_000,
                idleTimeout: .seconds(3600)), peerStore: nil, logger: log)
            identify = IdentifyService(swarm: swarm, logger: log)
            swarm.advertise(Ping.protocolID)
            swarm.observe { [weak self] e in
                guard let self else { return }
                self.identify.onPeerEvent(e)
                if case .identified = e { self.onIdentified?() }
            }
            swarm.handleRequests(WireBenchmark.rr) { _, req, respond in respond(req) }
            swarm.handleRawStreams(WireBenchmark.echo) { s in
                s.onData = { b in s.write(b) }
                s.onEnd = { _ in s.closeWrite() }
            }
            swarm.handleRawStreams(WireBenchmark.sink) { s in
                s.onData = { _ in }
                s.onEnd = { e in if e == nil { s.write([1]); s.closeWrite() } }
            }
        }

        /// Loop thread.
        func listen() throws -> Multiaddr {
            let l = try TCPListener.listen(on: loop, address: .loopback()) { [weak self] r in
                if case .success(let s) = r { self?.swarm.adoptInbound(s) }
            }
            listener = l
            let a = Multiaddr(socketAddress: l.localAddress)
            swarm.listenAddrs = [a]
            return a.appending(.p2p(swarm.localPeer))
        }
    }
}
