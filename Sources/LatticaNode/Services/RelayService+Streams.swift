import LatticaCore
import LatticaNAT
import LatticaUV
import Metrics

// MARK: stream handlers

extension RelayService {
    /// An inbound hop stream: one request (RESERVE or CONNECT).
    final class HopInbound: StreamHandler {
        weak var service: RelayService?
        var reader = FramedReader(maxMessageLength: Relay.maxMessageLength)
        var done = false
        init(service: RelayService) { self.service = service }

        func onData(_ s: SwarmStream, _ bytes: ArraySlice<UInt8>) {
            guard !done, let service else { return }
            do {
                guard let body = try reader.next(bytes) else { return }
                done = true
                let m = try Relay.HopMessage(decoding: body)
                service.hopRequest(s, m, rest: reader.takeRest())
            } catch {
                done = true
                RelayService.malformed("relay_hop", error)
                service.hopRefuse(s, .malformedMessage, "malformed")
            }
        }
        func onClosed(_ s: SwarmStream, error: String?) {}
    }

    /// An inbound stop stream: the relay offers a circuit from a peer.
    final class StopInbound: StreamHandler {
        weak var service: RelayService?
        var reader = FramedReader(maxMessageLength: Relay.maxMessageLength)
        var done = false
        init(service: RelayService) { self.service = service }

        func onData(_ s: SwarmStream, _ bytes: ArraySlice<UInt8>) {
            guard !done, let service else { return }
            do {
                guard let body = try reader.next(bytes) else { return }
                done = true
                let m = try Relay.StopMessage(decoding: body)
                service.stopConnect(s, m, rest: reader.takeRest())
            } catch {
                done = true
                RelayService.malformed("relay_stop", error)
                Counter(label: "lattica_relay_stop_refused_total", dimensions: [("reason", "malformed")]).increment()
                s.send(Relay.StopMessage(kind: .status, status: .malformedMessage).framed(), close: true)
            }
        }
        func onClosed(_ s: SwarmStream, error: String?) {}
    }

    /// Holds a source's hop stream while the relay asks the target.
    final class Waiting: StreamHandler {
        var early: [UInt8] = []
        func onData(_ s: SwarmStream, _ bytes: ArraySlice<UInt8>) {
            if early.count + bytes.count <= 1 << 16 { early.append(contentsOf: bytes) } else { s.reset() }
        }
        func onClosed(_ s: SwarmStream, error: String?) {}
    }

    /// One request on a relay stream (our RESERVE or CONNECT to a relay, the relay's CONNECT to
    /// a target) and its STATUS answer, with what followed the answer in the same read (the
    /// relayed connection's first bytes).
    final class Request<M>: DeadlineHandler {
        typealias Answer = (message: M, stream: SwarmStream, rest: [UInt8])
        var deadline: Instant?
        let timeout: Duration
        let peerName: String
        let decode: ([UInt8]) throws -> M
        let proto: String
        var reader = FramedReader(maxMessageLength: Relay.maxMessageLength)
        var completion: ((Result<Answer, SwarmError>) -> Void)?

        init(timeout: Duration, peerName: String, proto: String, decode: @escaping ([UInt8]) throws -> M,
             completion: @escaping (Result<Answer, SwarmError>) -> Void) {
            self.timeout = timeout; self.peerName = peerName; self.proto = proto; self.decode = decode; self.completion = completion
        }

        func begin(_ s: SwarmStream, _ request: [UInt8]) {
            guard let swarm = s.swarm else { return }
            deadline = swarm.loop.now + timeout
            swarm.ensureDeadlineSweep()
            s.send(request, close: false)
        }

        func finish(_ r: Result<Answer, SwarmError>) {
            deadline = nil
            let c = completion
            completion = nil
            c?(r)
        }

        func onData(_ s: SwarmStream, _ bytes: ArraySlice<UInt8>) {
            guard completion != nil else { return }
            do {
                guard let body = try reader.next(bytes) else { return }
                let m = try decode(body)
                finish(.success((m, s, reader.takeRest())))
            } catch {
                RelayService.malformed(proto, error)
                s.reset()
                finish(.failure(SwarmError("malformed answer from the \(peerName): \(error)")))
            }
        }
        func onClosed(_ s: SwarmStream, error: String?) {
            finish(.failure(SwarmError("the \(peerName) closed the stream\(error.map { ": \($0)" } ?? "")")))
        }
        func timedOut(_ s: SwarmStream) { finish(.failure(SwarmError("the \(peerName) did not answer in time"))) }
    }

    static func hopRequest(timeout: Duration, _ completion: @escaping (Result<Request<Relay.HopMessage>.Answer, SwarmError>) -> Void) -> Request<Relay.HopMessage> {
        Request(timeout: timeout, peerName: "relay", proto: "relay_hop", decode: { try Relay.HopMessage(decoding: $0) }, completion: completion)
    }

    static func stopRequest(timeout: Duration, _ completion: @escaping (Result<Request<Relay.StopMessage>.Answer, SwarmError>) -> Void) -> Request<Relay.StopMessage> {
        Request(timeout: timeout, peerName: "target", proto: "relay_stop", decode: { try Relay.StopMessage(decoding: $0) }, completion: completion)
    }
}

/// One bridged circuit on the relay: the source's hop stream and the target's stop stream. Bytes
/// from one side are written to the other and only then consumed (the sender's window opens as
/// the receiver reads), counted per direction against the limit; the circuit is reset on both
/// sides when a limit is reached.
final class Circuit {
    weak var service: RelayService?
    let id: Int
    let streams: [SwarmStream]
    let limit: Relay.HopSettings
    /// Per direction (0: source → target): bytes passed on, bytes waiting for the other side's window.
    var forwarded: [UInt64] = [0, 0]
    var pending: [[UInt8]] = [[], []]
    var finPending = [false, false]
    var timer: LoopTimer?
    var ended = false

    init(service: RelayService, id: Int, src: SwarmStream, dst: SwarmStream, limit: Relay.HopSettings) {
        self.service = service; self.id = id; self.streams = [src, dst]; self.limit = limit
    }

    func start(srcRest: [UInt8], dstRest: [UInt8]) {
        let early = (streams[0].handler as? RelayService.Waiting)?.early ?? []
        for (i, s) in streams.enumerated() {
            s.consumesManually = true
            s.handler = Side(circuit: self, index: i)
        }
        if limit.circuitDuration > .zero, let service {
            timer = service.ctx.timer(after: limit.circuitDuration) { [weak self] _ in self?.kill("duration_limit") }
        }
        // Bytes that came with the requests were consumed by the stack already: pass them on
        // without consuming them again.
        let first0 = srcRest + early
        if !first0.isEmpty { relay(from: 0, first0[...], consume: false) }
        if !dstRest.isEmpty { relay(from: 1, dstRest[...], consume: false) }
    }

    func relay(from i: Int, _ bytes: ArraySlice<UInt8>, consume: Bool = true) {
        guard !ended else { return }
        forwarded[i] &+= UInt64(bytes.count)
        if limit.circuitBytes > 0, forwarded[i] > limit.circuitBytes {
            kill("data_limit")
            return
        }
        Counter(label: "lattica_relay_hop_bytes_total").increment(by: bytes.count)
        let dst = streams[1 - i]
        if pending[i].isEmpty {
            let n = dst.write(bytes.prefix(max(dst.writableBytes, 0)))
            if consume { streams[i].consume(n) }
            if n < bytes.count { pending[i].append(contentsOf: bytes.dropFirst(n)) }
            if !consume { pendingUnconsumed[i] += bytes.count - n }
        } else {
            pending[i].append(contentsOf: bytes)
            if !consume { pendingUnconsumed[i] += bytes.count }
        }
    }

    /// Pending bytes that must not be consumed again when they go out (they came with a request).
    var pendingUnconsumed = [0, 0]

    func writable(_ j: Int) {
        let i = 1 - j
        guard !ended, !pending[i].isEmpty else { return }
        let dst = streams[j]
        let n = dst.write(pending[i].prefix(max(dst.writableBytes, 0)))
        guard n > 0 else { return }
        pending[i].removeFirst(n)
        let free = min(n, pendingUnconsumed[i])
        pendingUnconsumed[i] -= free
        streams[i].consume(n - free)
        if pending[i].isEmpty, finPending[i] { dst.closeWrite() }
    }

    func finished(_ i: Int) {
        if pending[i].isEmpty { streams[1 - i].closeWrite() } else { finPending[i] = true }
    }

    func kill(_ reason: String) {
        guard !ended else { return }
        ended = true
        timer?.cancel()
        for s in streams { s.reset() }
        service?.circuitEnded(id, reason)
    }

    func end(_ reason: String) {
        guard !ended else { return }
        ended = true
        timer?.cancel()
        service?.circuitEnded(id, reason)
    }

    final class Side: StreamHandler {
        weak var circuit: Circuit?
        let index: Int
        init(circuit: Circuit, index: Int) { self.circuit = circuit; self.index = index }
        func onData(_ s: SwarmStream, _ bytes: ArraySlice<UInt8>) { circuit?.relay(from: index, bytes) }
        func onFinished(_ s: SwarmStream) { circuit?.finished(index) }
        func onWritable(_ s: SwarmStream) { circuit?.writable(index) }
        func onClosed(_ s: SwarmStream, error: String?) {
            guard let c = circuit else { return }
            if error == nil, !c.streams[1 - index].isOpen { c.end("closed"); return }
            if error == nil { return }
            c.kill("reset")
        }
    }
}
