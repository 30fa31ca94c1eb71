import LatticaCore
import LatticaWire

/// A bidirectional stream of one protocol driven through closures, for protocols that are not one
/// request and one response (benchmarks, bulk transfer). Loop thread only.
///
/// Back-pressure: `write` returns how many bytes the stream accepted (yamux window and the
/// per-stream send bound); when it accepted fewer than offered, wait for `onWritable`. A bulk
/// sender writes at most `writableBytes` at a time (and waits for `onWritable` at 0): those bytes
/// go straight into frames, where anything beyond is first copied into the stream's send queue.
final class RawStream: StreamHandler {
    private(set) var stream: SwarmStream?
    var onData: ((ArraySlice<UInt8>) -> Void)?
    /// nil: the peer finished its side cleanly; otherwise why the stream ended. Called once.
    var onEnd: ((String?) -> Void)?
    var onWritable: (() -> Void)?
    private var ended = false

    init() {}

    func attach(_ s: SwarmStream) { stream = s }

    var peer: PeerId? { stream?.peer }
    var protocolID: String? { stream?.protocolID }

    @discardableResult
    func write(_ bytes: some Collection<UInt8>) -> Int { stream?.write(bytes) ?? 0 }
    var writableBytes: Int { stream?.writableBytes ?? 0 }
    func closeWrite() { stream?.closeWrite() }
    func reset() { stream?.reset() }

    private func end(_ error: String?) {
        guard !ended else { return }
        ended = true
        onEnd?(error)
    }

    func onData(_ s: SwarmStream, _ bytes: ArraySlice<UInt8>) { onData?(bytes) }
    func onFinished(_ s: SwarmStream) { end(nil) }
    func onClosed(_ s: SwarmStream, error: String?) {
        end(error ?? "stream closed")
        stream = nil
    }
    func onWritable(_ s: SwarmStream) { onWritable?() }
}

extension Swarm {
    typealias RawStreamHandler = (RawStream) -> Void

    /// Opens a raw stream for `proto` to a connected peer.
    func openRawStream(_ peer: PeerId, _ proto: String) -> RawStream? {
        let r = RawStream()
        guard let s = openStream(peer, proto, handler: r) else { return nil }
        r.attach(s)
        return r
    }

    /// Accepts inbound raw streams of `proto`.
    func handleRawStreams(_ proto: String, _ handler: @escaping RawStreamHandler) {
        handle(proto) { s in
            let r = RawStream()
            r.attach(s)
            handler(r)
            return r
        }
    }
}
