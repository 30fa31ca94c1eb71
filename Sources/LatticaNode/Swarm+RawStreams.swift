import LatticaCore
import LatticaWire

/// A bidirectional stream of one protocol, for protocols that are not one request and one response
/// (model transfer, benchmarks). Loop thread only.
///
/// Back-pressure: `write` returns how many bytes the stream accepted (yamux window and the
/// per-stream send bound); when it accepted fewer than offered, wait for `onWritable`. A bulk
/// sender writes at most `writableBytes` at a time (and waits for `onWritable` at 0): those bytes
/// go straight into frames, where anything beyond is first copied into the stream's send queue.
final class RawStream {
    weak var swarm: Swarm?
    let conn: Conn
    let id: Connection.StreamID
    let peer: PeerId
    let protocolID: String
    var onData: ((ArraySlice<UInt8>) -> Void)?
    /// nil: the peer finished its side cleanly; otherwise why the stream ended.
    var onEnd: ((String?) -> Void)?
    var onWritable: (() -> Void)?

    init(swarm: Swarm, conn: Conn, id: Connection.StreamID, peer: PeerId, protocolID: String) {
        self.swarm = swarm; self.conn = conn; self.id = id; self.peer = peer; self.protocolID = protocolID
    }

    @discardableResult
    func write(_ bytes: some Collection<UInt8>) -> Int {
        guard let swarm, conn.streams[id] != nil else { return 0 }
        let (n, ds) = conn.instance.write(stream: id, bytes: bytes, now: swarm.loop.now)
        swarm.apply(conn, ds)
        return n
    }

    /// Bytes a `write` sends at once (the peer's window minus what is queued).
    var writableBytes: Int { conn.streams[id] == nil ? 0 : conn.instance.writableBytes(id) }

    func closeWrite() {
        guard let swarm, conn.streams[id] != nil else { return }
        swarm.apply(conn, conn.instance.closeWrite(stream: id, now: swarm.loop.now))
    }

    func reset() {
        guard let swarm, conn.streams[id] != nil else { return }
        swarm.apply(conn, conn.instance.reset(stream: id, now: swarm.loop.now))
    }
}

extension Swarm {
    typealias RawStreamHandler = (RawStream) -> Void

    /// Opens a raw stream for `proto` to a connected peer.
    func openRawStream(_ peer: PeerId, _ proto: String) -> RawStream? {
        guard let (c, sid, s) = openStream(peer, proto, kind: .raw) else { return nil }
        let r = RawStream(swarm: self, conn: c, id: sid, peer: peer, protocolID: proto)
        s.raw = r
        return r
    }

    /// Accepts inbound raw streams of `proto`.
    func handleRawStreams(_ proto: String, _ handler: @escaping RawStreamHandler) {
        rawHandlers[proto] = handler
    }
}
