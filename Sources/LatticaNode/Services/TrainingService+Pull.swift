import LatticaCore
import LatticaAveraging
import Metrics

/// The requester's side of one `/lattica/avg/1.0.0` pull, decoded as it arrives: the swarm's
/// length prefix first (checked against the limit before anything is allocated), then the reply
/// through `Averaging.Wire.ReplyReceiver`, which writes the floats of each chunk straight into one
/// buffer (θ − φ for a model of a step close to ours, checked and measured in the same pass).
/// Same framing outcomes as `RequestOut` + `MessageReader`; a 100 MB model is never held twice.
final class AveragingPullOut: DeadlineHandler {
    enum Failure: Error {
        /// Not connected, timed out, a framing error, the stream gone: the peer is unreachable.
        case transport(String)
        /// The reply itself is malformed or of the wrong shape: refused as evidence.
        case malformed(Averaging.Wire.DecodeError)
    }

    let limit: Int
    var receiver: Averaging.Wire.ReplyReceiver
    /// φ for the delta kind: read for each chunk, so it must not change during the reply (it
    /// changes only when the step ends, and then `stillWanted` is false).
    let phi: () -> [Float]?
    let stillWanted: () -> Bool
    /// The outcome and the reply's size in bytes.
    var completion: ((Result<Averaging.Wire.ReplyReceiver.Received, Failure>, Int) -> Void)?
    var deadline: Instant?
    let timeoutMessage: String
    var header: [UInt8] = []
    var remaining: Int?
    var bytes = 0

    init(limit: Int, timeout: Duration, receiver: Averaging.Wire.ReplyReceiver, phi: @escaping () -> [Float]?,
         stillWanted: @escaping () -> Bool, completion: @escaping (Result<Averaging.Wire.ReplyReceiver.Received, Failure>, Int) -> Void) {
        self.limit = limit
        self.receiver = receiver
        self.phi = phi
        self.stillWanted = stillWanted
        self.completion = completion
        timeoutMessage = "request timed out after \(timeout)"
    }

    func finish(_ r: Result<Averaging.Wire.ReplyReceiver.Received, Failure>) {
        deadline = nil
        let c = completion
        completion = nil
        c?(r, bytes)
    }

    func onData(_ s: SwarmStream, _ chunk: ArraySlice<UInt8>) {
        guard completion != nil else { return }
        guard stillWanted() else {
            // The step ended without this model: stop reading it (and free the window).
            finish(.failure(.transport("the outer step ended before the reply")))
            s.reset()
            return
        }
        var rest = chunk
        while remaining == nil, let b = rest.first {
            rest = rest.dropFirst()
            header.append(b)
            let decoded: (value: UInt64, length: Int)?
            do { decoded = try Varint.decode(header[...]) } catch { return framing(s, "malformed length prefix") }
            guard let (n, _) = decoded else { continue }
            guard n <= UInt64(limit) else { return framing(s, "message of \(n) bytes exceeds the limit of \(limit)") }
            remaining = Int(n)
        }
        guard let left = remaining, !rest.isEmpty else { return }
        guard rest.count <= left else { return framing(s, "trailing bytes after the message") }
        remaining = left - rest.count
        bytes += rest.count
        var failure: Averaging.Wire.DecodeError?
        rest.withUnsafeBytes { raw in
            do throws(Averaging.Wire.DecodeError) {
                if receiver.needsPhi {
                    guard let phi = phi() else { throw .truncated("no model to take the delta from") }
                    phi.withUnsafeBufferPointer { p in
                        do throws(Averaging.Wire.DecodeError) { try receiver.onBytes(raw, phi: p) } catch { failure = error }
                    }
                } else {
                    try receiver.onBytes(raw, phi: nil)
                }
            } catch {
                failure = error
            }
        }
        if let failure {
            finish(.failure(.malformed(failure)))
            s.reset()
        }
    }

    func onFinished(_ s: SwarmStream) {
        guard completion != nil else { return }
        guard remaining == 0 else { return framing(s, "stream ended before a whole message arrived") }
        do { finish(.success(try receiver.finish())) } catch { finish(.failure(.malformed(error))) }
    }

    func onClosed(_ s: SwarmStream, error: String?) { finish(.failure(.transport(error ?? "stream closed before an answer"))) }
    func timedOut(_ s: SwarmStream) { finish(.failure(.transport(timeoutMessage))) }

    private func framing(_ s: SwarmStream, _ why: String) {
        Counter(label: "lattica_protocol_errors_total", dimensions: [("protocol", s.protocolID), ("reason", "framing")]).increment()
        finish(.failure(.transport(why)))
        s.reset()
    }
}

extension TrainingService {
    /// Sends one pull and decodes the reply as it streams in (`AveragingPullOut`); the reply's
    /// buffer is a spare one of an earlier step when there is one.
    func streamPull(_ peer: PeerId, request: [UInt8], timeout: Duration, expectedCount: Int, step: Int, staleness: Int,
                    completion: @escaping (Result<Averaging.Wire.ReplyReceiver.Received, AveragingPullOut.Failure>, Int) -> Void) {
        let reuse = run?.avg?.spareBuffer()
        let receiver = Averaging.Wire.ReplyReceiver(expectedCount: expectedCount, deltaSteps: max(0, step - staleness)...(step + staleness), reuse: reuse)
        let h = AveragingPullOut(limit: 4 * expectedCount + 64, timeout: timeout, receiver: receiver,
                                 phi: { [weak self] in self?.run?.avg?.slow },
                                 stillWanted: { [weak self] in self?.run?.pending?.step == step }, completion: completion)
        swarm.openStreamQueued(peer, Averaging.Wire.protocolID, handler: h) { [weak self] s in
            guard let self else { return }
            guard let s else { h.finish(.failure(.transport("not connected to \(peer), or too many streams queued"))); return }
            h.deadline = self.loop.now + timeout
            self.swarm.ensureDeadlineSweep()
            s.send(LengthPrefixed.encode(request), close: true)
        }
    }
}
