import LatticaCore
import LatticaUV
import Metrics

/// What carries one connection's bytes: a TCP socket, or a relayed circuit (a stream of another
/// connection, through a Circuit Relay v2 relay). The swarm drives `Connection.Instance` over
/// either the same way. Loop thread only.
protocol ConnTransport: AnyObject {
    var onData: ((UnsafeRawBufferPointer) -> Void)? { get set }
    /// nil: the other side closed cleanly; otherwise why reading stopped.
    var onEnd: ((UVError?) -> Void)? { get set }
    func startReading()
    /// Takes the bytes (copied before it returns); `completion` reports a failed write.
    func write(_ bytes: UnsafeRawBufferPointer, completion: ((UVError?) -> Void)?)
    var isClosing: Bool { get }
    func close()
    /// How the connection came about, for `peers` and the metrics.
    var kind: ConnKind { get }
    /// Bytes taken by `write` and not yet handed on (the kernel did not take them yet). The swarm
    /// offers streams' data only while this is under `Swarm.sendBudget` (back-pressure).
    var queuedBytes: Int { get }
    /// False from the queue's high watermark until it drained (`onWritabilityChanged(true)`).
    var isWritable: Bool { get }
    /// `true` once the queue drained after it had been full (a TCP socket's low watermark).
    var onWritabilityChanged: ((Bool) -> Void)? { get set }
}

/// How a connection came about.
enum ConnKind: Equatable {
    /// A TCP connection we dialled or accepted (`punched`: the hole punch that made it, `dcutr`
    /// or `spray`; nil for a plain dial or accept).
    case direct(punched: String?)
    /// A circuit through `relay`.
    case relayed(via: PeerId)

    var isRelayed: Bool { if case .relayed = self { true } else { false } }
}

extension TCPSocket: ConnTransport {
    var kind: ConnKind { .direct(punched: nil) }
}

/// A TCP socket a hole punch produced (the kind differs, nothing else).
final class PunchedTCP: ConnTransport {
    let socket: TCPSocket
    /// `dcutr` or `spray`.
    let method: String
    init(_ socket: TCPSocket, method: String) { self.socket = socket; self.method = method }
    var onData: ((UnsafeRawBufferPointer) -> Void)? {
        get { socket.onData } set { socket.onData = newValue }
    }
    var onEnd: ((UVError?) -> Void)? {
        get { socket.onEnd } set { socket.onEnd = newValue }
    }
    func startReading() { socket.startReading() }
    func write(_ bytes: UnsafeRawBufferPointer, completion: ((UVError?) -> Void)?) { socket.write(bytes, completion: completion) }
    var isClosing: Bool { socket.isClosing }
    func close() { socket.close() }
    var kind: ConnKind { .direct(punched: method) }
    var queuedBytes: Int { socket.queuedBytes }
    var isWritable: Bool { socket.isWritable }
    var onWritabilityChanged: ((Bool) -> Void)? {
        get { socket.onWritabilityChanged } set { socket.onWritabilityChanged = newValue }
    }
}

/// A relayed connection: the bytes of an inner connection (Noise, yamux, the streams) carried in
/// one stream of the connection to the relay: the hop stream on the dialling side, the stop stream
/// on the target's side. The inner yamux's flow control bounds what is in flight; what the outer
/// stream's window does not take yet waits here, bounded by `maxBacklog` (beyond it the inner
/// connection is closed, as a TCP socket's full write queue closes a direct one).
final class RelayedTransport: ConnTransport, StreamHandler {
    static let maxBacklog = 64 << 20
    private(set) var stream: SwarmStream?
    let relay: PeerId
    var onData: ((UnsafeRawBufferPointer) -> Void)?
    var onEnd: ((UVError?) -> Void)?
    private(set) var isClosing = false
    private var reading = false
    /// Bytes that arrived before reading started (with the relay's status, or before `startReading`).
    private var early: [UInt8] = []
    private var backlog: [UInt8] = []
    private var backlogStart = 0
    private var ended = false

    init(stream: SwarmStream, initial: [UInt8]) {
        self.stream = stream
        self.relay = stream.peer
        self.early = initial
        stream.handler = self
    }

    var kind: ConnKind { .relayed(via: relay) }
    /// The backlog is bounded by `maxBacklog` itself (the outer stream's window paces it): the
    /// swarm's send budget does not apply to relayed connections.
    var queuedBytes: Int { 0 }
    var isWritable: Bool { true }
    var onWritabilityChanged: ((Bool) -> Void)?

    func startReading() {
        guard !reading else { return }
        reading = true
        if !early.isEmpty {
            let bytes = early
            early = []
            bytes.withUnsafeBytes { onData?($0) }
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer, completion: ((UVError?) -> Void)?) {
        guard let stream, !isClosing else {
            completion?(UVError(kind: .closed, operation: "relayed write"))
            return
        }
        if backlogStart == backlog.count {
            let n = stream.write(bytes.prefix(max(stream.writableBytes, 0)))
            if n == bytes.count { return }
            backlog.removeAll(keepingCapacity: true)
            backlogStart = 0
            backlog.append(contentsOf: bytes[n...])
        } else {
            guard backlog.count - backlogStart + bytes.count <= Self.maxBacklog else {
                Counter(label: "lattica_relay_client_backlog_overflow_total").increment()
                completion?(UVError(kind: .writeQueueFull, operation: "relayed write"))
                return
            }
            backlog.append(contentsOf: bytes)
        }
    }

    func close() {
        guard !isClosing else { return }
        isClosing = true
        onData = nil
        onEnd = nil
        // What the inner connection wrote last (its GoAway) still goes out, then our side closes.
        if backlogStart == backlog.count { stream?.closeWrite() }
    }

    // MARK: the outer stream

    func onData(_ s: SwarmStream, _ bytes: ArraySlice<UInt8>) {
        guard !isClosing else { return }
        if reading { bytes.withUnsafeBytes { onData?($0) } } else { early.append(contentsOf: bytes) }
    }

    func onFinished(_ s: SwarmStream) { end(nil) }

    func onClosed(_ s: SwarmStream, error: String?) {
        stream = nil
        end(error.map { _ in UVError(kind: .closed, operation: "relayed circuit") })
    }

    func onWritable(_ s: SwarmStream) {
        while backlogStart < backlog.count {
            let n = s.write(backlog[backlogStart...].prefix(max(s.writableBytes, 0)))
            if n == 0 { return }
            backlogStart += n
        }
        backlog.removeAll(keepingCapacity: backlog.capacity <= 1 << 20)
        backlogStart = 0
        if isClosing { s.closeWrite() }
    }

    private func end(_ e: UVError?) {
        guard !ended else { return }
        ended = true
        if reading { onEnd?(e) } else {
            // The swarm reads at once after adopting; an end before that is reported when it starts.
            let cb = onEnd
            onEnd = nil
            cb?(e)
        }
    }
}
