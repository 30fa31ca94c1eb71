import LatticaCore
import LatticaCrypto
import LatticaUV
import LatticaWire
import Metrics

/// How a one-off dial (an AutoNAT dial-back) ended.
enum OneOffDialOutcome: Equatable {
    /// TCP, Noise or yamux failed: the address is not reachable (for this purpose).
    case connectFailed(String)
    /// Connected, but the stream failed or no answer came.
    case streamFailed(String)
    /// The peer's answer on the stream (at most `maxReply` bytes; what arrived before it finished).
    case replied([UInt8])
}

extension Swarm {
    /// Dials `addr` on a fresh TCP connection that is *not* one of the swarm's peer connections:
    /// a throwaway identity (the AutoNAT v2 spec lets dial-backs use another peer id; with ours,
    /// the client would see a second connection from us and might drop its first), no identify,
    /// no inbound protocols. Opens one `proto` stream, writes `payload`, closes its side, and
    /// completes with the first answer, then closes the connection. Bounded by `timeout`.
    /// Never reuses an existing connection, even to a connected peer's address.
    func dialOneOff(_ addr: SocketAddress, proto: String, payload: [UInt8], maxReply: Int = 1024, timeout: Duration,
                    completion: @escaping (OneOffDialOutcome) -> Void) {
        loop.assertInLoop()
        let d = OneOffDial(loop: loop, proto: proto, payload: payload, maxReply: maxReply, rng: rng.fork(), completion: completion)
        d.keepAlive = d
        d.timer = loop.scheduleTimer(after: timeout) { [weak d] _ in d?.finish(.streamFailed("timed out"), connected: nil) }
        TCPSocket.connect(on: loop, to: addr, timeout: timeout) { [d] r in
            switch r {
            case .failure(let e): d.finish(.connectFailed("\(e)"), connected: false)
            case .success(let s): d.run(s)
            }
        }
    }
}

/// One dial-back connection, driving its own `Connection.Instance`. Loop thread only.
final class OneOffDial {
    let loop: EventLoop
    let proto: String
    let payload: [UInt8]
    let maxReply: Int
    var instance: Connection.Instance
    var socket: TCPSocket?
    var timer: LoopTimer?
    var completion: ((OneOffDialOutcome) -> Void)?
    var stream: Connection.StreamID?
    var reply: [UInt8] = []
    var established = false
    /// Holds the dial alive until it finishes (the socket's callbacks hold it weakly).
    var keepAlive: OneOffDial?

    init(loop: EventLoop, proto: String, payload: [UInt8], maxReply: Int, rng: SeededRandom, completion: @escaping (OneOffDialOutcome) -> Void) {
        self.loop = loop; self.proto = proto; self.payload = payload; self.maxReply = maxReply; self.completion = completion
        let throwaway = Ed25519PrivateKey.generate()
        var s = Connection.Settings(protocols: [])
        s.answerPings = false
        instance = Connection.Instance(role: .dialer(expectedPeer: nil), identity: throwaway, settings: s, rng: rng,
                                       noiseKeys: Noise.Keys(staticKey: .generate(), ephemeralKey: .generate()))
    }

    func run(_ s: TCPSocket) {
        guard completion != nil else { s.close(); return }
        socket = s
        s.onData = { [weak self] bytes in
            guard let self else { return }
            self.apply(self.instance.onBytes(copying: bytes, now: self.loop.now))
        }
        s.onEnd = { [weak self] _ in
            guard let self else { return }
            self.apply(self.instance.onEndOfInput(now: self.loop.now))
        }
        s.startReading()
        apply(instance.start(now: loop.now))
    }

    func apply(_ ds: [Connection.Directive]) {
        for d in ds {
            guard completion != nil else { return }
            switch d {
            case .send(let b): socket?.write(b)
            case .established:
                established = true
                guard let (id, more) = instance.openStream(protocols: [proto], now: loop.now) else {
                    finish(.streamFailed("cannot open a stream"), connected: true); return
                }
                stream = id
                apply(more)
            case .streamOpened(let sid, _, let inbound):
                guard !inbound, sid == stream else { continue }
                let (_, w) = instance.write(stream: sid, bytes: payload, now: loop.now)
                apply(w)
                apply(instance.closeWrite(stream: sid, now: loop.now))
            case .streamFailed(let sid, let why) where sid == stream:
                finish(.streamFailed("negotiation: \(why)"), connected: true)
            case .data(let sid, let bytes) where sid == stream:
                reply += bytes.prefix(maxReply - reply.count)
                apply(instance.consumed(stream: sid, count: bytes.count, now: loop.now))
                if reply.count >= maxReply { finish(.replied(reply), connected: true) }
            case .finished(let sid) where sid == stream, .streamClosed(let sid) where sid == stream:
                finish(reply.isEmpty ? .streamFailed("closed without an answer") : .replied(reply), connected: true)
            case .reset(let sid) where sid == stream:
                finish(reply.isEmpty ? .streamFailed("reset") : .replied(reply), connected: true)
            case .closed(let reason):
                finish(established ? .streamFailed("connection closed: \(reason)") : .connectFailed("\(reason)"), connected: established)
            default:
                break
            }
        }
    }

    /// Answers once, then closes the connection (after what is queued for it).
    func finish(_ outcome: OneOffDialOutcome, connected: Bool?) {
        guard let c = completion else { return }
        completion = nil
        timer?.cancel()
        timer = nil
        if let s = socket {
            for d in instance.close(now: loop.now) { if case .send(let b) = d { s.write(b) } }
            s.onData = nil
            s.onEnd = nil
            s.close()
        }
        socket = nil
        Counter(label: "lattica_autonat_dialbacks_total", dimensions: [("result", Self.label(outcome))]).increment()
        keepAlive = nil
        c(outcome)
    }

    static func label(_ o: OneOffDialOutcome) -> String {
        switch o {
        case .connectFailed: "connect_failed"
        case .streamFailed: "stream_failed"
        case .replied: "ok"
        }
    }
}
