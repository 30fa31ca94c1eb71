import LatticaAPI
import LatticaCore
import LatticaCrypto
import LatticaUV
import LatticaWire
import Metrics

/// ping (`/ipfs/ping/1.0.0`): inbound pings are echoed inside `Connection.Instance` (no hop to a
/// handler); this service advertises the protocol, measures round trips on request (the `ping`
/// control method), and records the RTT in the peer table. Loop thread only.
final class PingService: NodeService, @unchecked Sendable {
    static let name = "ping"
    let swarm: Swarm
    var rng: SeededRandom

    init(context: ServiceContext) {
        swarm = context.swarm
        rng = SeededRandom(seed: SecureRandom.uint64())
        swarm.advertise(Ping.protocolID)
        let ctx = context
        context.method(Methods.Ping.self) { [self] p in
            let count = p.count ?? 1
            let peer: PeerId
            if let ma = try? Multiaddr(p.peer), ma.peerId != nil {
                peer = try await ctx.onLoop { done in ctx.swarm.dial(ma) { done($0) } }
            } else {
                do { peer = try PeerId(string: p.peer) } catch {
                    throw ControlErrorBody.badRequest("'peer' is neither a peer id nor a multiaddr with /p2p/")
                }
            }
            let rtts: [Duration] = try await ctx.onLoop { done in
                self.ping(peer, count: count) { done($0) }
            }
            return PingResult(peerId: peer.description, rttsMs: rtts.map { $0.secondsDouble * 1000 })
        }
    }

    /// Pings `peer` `count` times on one stream; completes with the round-trip times.
    func ping(_ peer: PeerId, count: Int, completion: @escaping (Result<[Duration], SwarmError>) -> Void) {
        let h = PingStream(ping: Ping.Instance(rng: rng.fork()), count: count, completion: completion)
        swarm.openStreamQueued(peer, Ping.protocolID, handler: h) { [weak self] s in
            guard let self else { return }
            guard let s else { h.finish(.failure(SwarmError("not connected to \(peer)"))); return }
            h.timer = self.swarm.loop.scheduleTimer(after: .seconds(10) * max(1, count)) { [weak h, weak s] _ in
                h?.finish(.failure(SwarmError("ping timed out")))
                s?.reset()
            }
            h.sendNext(s)
        }
    }

    /// One outbound ping stream.
    final class PingStream: StreamHandler {
        var ping: Ping.Instance
        var remaining: Int
        var rtts: [Duration] = []
        var completion: ((Result<[Duration], SwarmError>) -> Void)?
        var timer: LoopTimer?

        init(ping: Ping.Instance, count: Int, completion: @escaping (Result<[Duration], SwarmError>) -> Void) {
            self.ping = ping; self.remaining = count; self.completion = completion
        }

        func finish(_ r: Result<[Duration], SwarmError>) {
            timer?.cancel()
            timer = nil
            let c = completion
            completion = nil
            c?(r)
        }

        func sendNext(_ s: SwarmStream) {
            guard remaining > 0, let swarm = s.swarm, let payload = ping.ping(now: swarm.loop.now) else { return }
            remaining -= 1
            s.send(payload, close: false)
        }

        func onData(_ s: SwarmStream, _ bytes: ArraySlice<UInt8>) {
            guard let swarm = s.swarm else { return }
            for e in ping.onBytes(bytes, now: swarm.loop.now) {
                switch e {
                case .rtt(let d):
                    rtts.append(d)
                    swarm.updateInfo(s.peer) { $0.rtt = d }
                    if remaining > 0 { sendNext(s) } else {
                        finish(.success(rtts))
                        s.closeWrite()
                    }
                case .mismatch:
                    Counter(label: "lattica_protocol_errors_total", dimensions: [("protocol", "ping"), ("reason", "mismatch")]).increment()
                    finish(.failure(SwarmError("ping echo did not match")))
                    s.reset()
                }
            }
        }

        func onFinished(_ s: SwarmStream) { finish(.failure(SwarmError("peer closed the ping stream"))) }
        func onClosed(_ s: SwarmStream, error: String?) { finish(.failure(SwarmError(error ?? "ping stream closed"))) }
    }
}
