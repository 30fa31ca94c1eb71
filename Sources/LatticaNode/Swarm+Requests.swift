import LatticaCore
import LatticaWire
import Metrics

/// Request/response framing of our application protocols: one request and one response per
/// stream, each an unsigned varint length followed by that many bytes (Docs/WIRE.md).
enum LengthPrefixed {
    /// The message once complete; nil while incomplete; throws when malformed or over `limit`.
    static func decode(_ buffer: [UInt8], limit: Int) throws(SwarmError) -> [UInt8]? {
        let header: (value: UInt64, length: Int)?
        do { header = try Varint.decode(buffer[...]) } catch { throw SwarmError("malformed length prefix") }
        guard let (n, len) = header else { return nil }
        guard n <= UInt64(limit) else { throw SwarmError("message of \(n) bytes exceeds the limit of \(limit)") }
        guard buffer.count >= len + Int(n) else { return nil }
        guard buffer.count == len + Int(n) else { throw SwarmError("trailing bytes after the message") }
        return Array(buffer[len...])
    }

    static func encode(_ m: [UInt8]) -> [UInt8] {
        var out = Varint.encoded(UInt64(m.count))
        out.reserveCapacity(out.count + m.count)
        out += m
        return out
    }
}

/// Collects one length-prefixed message from a stream; shared by both sides of a request. The
/// length prefix is read first; the payload then goes straight into one buffer of that size, which
/// becomes the message (a 100 MB model is allocated and copied once, not once more to strip the
/// prefix). Same outcomes as `LengthPrefixed.decode` on the whole stream (tested).
struct MessageReader {
    let limit: Int
    var header: [UInt8] = []
    var expected: Int?
    var buffer: [UInt8] = []
    var done = false

    enum Outcome { case waiting, message([UInt8]), failed(String) }

    mutating func onData(_ bytes: ArraySlice<UInt8>) -> Outcome {
        guard !done else { return .waiting }
        var rest = bytes
        if expected == nil {
            // At most 10 bytes of varint: taken one at a time until it is complete.
            while expected == nil, let b = rest.first {
                header.append(b)
                rest = rest.dropFirst()
                let decoded: (value: UInt64, length: Int)?
                do { decoded = try Varint.decode(header[...]) } catch { return fail("malformed length prefix") }
                guard let (n, _) = decoded else { continue }
                guard n <= UInt64(limit) else { return fail("message of \(n) bytes exceeds the limit of \(limit)") }
                expected = Int(n)
                buffer.reserveCapacity(Int(n))
            }
        }
        guard let n = expected else { return .waiting }
        guard buffer.count + rest.count <= n else { return fail("trailing bytes after the message") }
        buffer.append(contentsOf: rest)
        return take(finished: false)
    }

    mutating func take(finished: Bool) -> Outcome {
        guard !done else { return .waiting }
        guard let n = expected, buffer.count == n else {
            return finished ? fail("stream ended before a whole message arrived") : .waiting
        }
        done = true
        let m = buffer
        buffer = []
        return .message(m)
    }

    private mutating func fail(_ why: String) -> Outcome {
        done = true
        buffer = []
        return .failed(why)
    }
}

/// The requester's side of one request stream.
final class RequestOut: DeadlineHandler {
    var reader: MessageReader
    var completion: ((Result<[UInt8], SwarmError>) -> Void)?
    var deadline: Instant?
    let timeoutMessage: String

    init(limit: Int, timeout: Duration, completion: @escaping (Result<[UInt8], SwarmError>) -> Void) {
        reader = MessageReader(limit: limit)
        self.completion = completion
        timeoutMessage = "request timed out after \(timeout)"
    }

    func finish(_ r: Result<[UInt8], SwarmError>) {
        deadline = nil
        let c = completion
        completion = nil
        c?(r)
    }

    func onData(_ s: SwarmStream, _ bytes: ArraySlice<UInt8>) { outcome(s, reader.onData(bytes)) }
    func onFinished(_ s: SwarmStream) { outcome(s, reader.take(finished: true)) }
    func onClosed(_ s: SwarmStream, error: String?) { finish(.failure(SwarmError(error ?? "stream closed before an answer"))) }
    func timedOut(_ s: SwarmStream) { finish(.failure(SwarmError(timeoutMessage))) }

    private func outcome(_ s: SwarmStream, _ o: MessageReader.Outcome) {
        switch o {
        case .waiting: break
        case .message(let m): finish(.success(m))
        case .failed(let why):
            Counter(label: "lattica_protocol_errors_total", dimensions: [("protocol", s.protocolID), ("reason", "framing")]).increment()
            finish(.failure(SwarmError(why)))
            s.reset()
        }
    }
}

/// The responder's side: reads the request, hands it to the service, writes its answer.
final class RequestIn: StreamHandler {
    var reader: MessageReader
    let handler: Swarm.RequestHandler
    let served: Counter

    init(limit: Int, handler: @escaping Swarm.RequestHandler, served: Counter) {
        reader = MessageReader(limit: limit)
        self.handler = handler
        self.served = served
    }

    func onData(_ s: SwarmStream, _ bytes: ArraySlice<UInt8>) { outcome(s, reader.onData(bytes)) }
    func onFinished(_ s: SwarmStream) { outcome(s, reader.take(finished: true)) }
    func onClosed(_ s: SwarmStream, error: String?) {}

    private func outcome(_ s: SwarmStream, _ o: MessageReader.Outcome) {
        switch o {
        case .waiting: break
        case .failed:
            Counter(label: "lattica_protocol_errors_total", dimensions: [("protocol", s.protocolID), ("reason", "framing")]).increment()
            s.reset()
        case .message(let m):
            served.increment()
            handler(s.peer, m) { [weak s] response in
                guard let s, s.isOpen else { return }
                switch response {
                case .some(let r) where r.isEmpty: s.closeWrite()  // no answer (one-way protocols): just close our side
                case .some(let r):
                    // The prefix, then the answer itself: a large answer is not copied to prepend it.
                    s.send(Varint.encoded(UInt64(r.count)), close: false)
                    s.send(r, close: true)
                case .none: s.reset()
                }
            }
        }
    }
}

/// A one-way message: written and closed; nothing is read back.
final class OneWayOut: StreamHandler {
    func onData(_ s: SwarmStream, _ bytes: ArraySlice<UInt8>) {}
    func onClosed(_ s: SwarmStream, error: String?) {}
}

extension Swarm {
    /// `respond(bytes)` answers; `respond([])` closes without an answer (one-way protocols);
    /// `respond(nil)` resets the stream.
    typealias RequestHandler = (_ from: PeerId, _ request: [UInt8], _ respond: @escaping ([UInt8]?) -> Void) -> Void

    /// Answers inbound requests of `proto` (one length-prefixed request and response per stream,
    /// each at most `maxBytes`).
    func handleRequests(_ proto: String, maxBytes: Int? = nil, _ handler: @escaping RequestHandler) {
        let limit = maxBytes ?? settings.maxRequestBytes
        let served = Counter(label: "lattica_requests_served_total", dimensions: [("protocol", proto)])
        handle(proto) { _ in RequestIn(limit: limit, handler: handler, served: served) }
    }

    /// Sends `request` on a new `proto` stream to a connected peer; completes with the response.
    func request(_ peer: PeerId, _ proto: String, _ request: [UInt8], timeout: Duration = .seconds(30), maxResponseBytes: Int? = nil,
                 completion: @escaping (Result<[UInt8], SwarmError>) -> Void) {
        let h = RequestOut(limit: maxResponseBytes ?? settings.maxRequestBytes, timeout: timeout, completion: completion)
        openStreamQueued(peer, proto, handler: h) { [weak self] s in
            guard let self else { return }
            guard let s else { h.finish(.failure(SwarmError("not connected to \(peer), or too many streams queued"))); return }
            // No timer per request: one sweep per swarm fails the overdue ones (see sweepDeadlines).
            h.deadline = self.loop.now + timeout
            self.ensureDeadlineSweep()
            s.send(LengthPrefixed.encode(request), close: true)
        }
    }

    /// Sends one framed message on a new stream and closes it; no response is read.
    func sendOneWay(_ peer: PeerId, _ proto: String, _ message: [UInt8], completion: @escaping (Bool) -> Void) {
        openStreamQueued(peer, proto, handler: OneWayOut()) { s in
            guard let s else { completion(false); return }
            s.send(LengthPrefixed.encode(message), close: true)
            completion(true)
        }
    }
}
