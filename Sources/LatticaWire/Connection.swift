public import LatticaCore
import LatticaCrypto

/// A whole libp2p TCP connection as a sans-I/O value:
///
///     raw TCP bytes ─ multistream-select (/noise) ─ Noise XX ─ multistream-select (/yamux/1.0.0)
///       ─ yamux ─ per stream: multistream-select (application protocol) ─ stream bytes
///
/// The shell moves bytes (`.send` → socket, socket → `onBytes`) and timers (`nextDeadline` →
/// `onTimer`); everything else happens here. See Docs/WIRE.md.
public enum Connection {
    public typealias StreamID = Yamux.StreamID

    public enum Role: Sendable, Hashable {
        /// We dialled; if `expectedPeer` is set, any other remote identity is rejected.
        case dialer(expectedPeer: PeerId?)
        case listener
    }

    public struct Settings: Sendable {
        /// Application protocols accepted on inbound streams (multistream-select listener).
        public var protocols: [String]
        public var yamux = Yamux.Settings()
        public var multistream = Multistream.Settings()
        public var noise = Noise.Settings()
        /// Until the muxer is negotiated; then the connection closes with `.handshakeTimeout`.
        public var handshakeTimeout: Duration = .seconds(10)
        /// Answer inbound `/ipfs/ping/1.0.0` streams inside the connection (they are not reported).
        public var answerPings = true
        /// Bytes an inbound stream may send while its protocol is being negotiated.
        public var maxNegotiationBytes = 4096

        public init(protocols: [String] = []) { self.protocols = protocols }
    }

    public enum CloseReason: Hashable, Sendable {
        case securityNegotiationFailed(Multistream.Failure)
        case handshakeFailed(Noise.Failure)
        case transportFailed(Noise.Failure)
        case muxerNegotiationFailed(Multistream.Failure)
        case muxerViolation(Yamux.Violation)
        case handshakeTimeout
        /// The peer closed the TCP connection (`onEndOfInput`).
        case remoteClosed
        /// `close` was called.
        case local
    }

    public enum StreamFailure: Hashable, Sendable {
        /// The peer supports none of the protocols we proposed (or broke multistream-select).
        case negotiation(Multistream.Failure)
        /// The peer closed or reset the stream before negotiation finished.
        case closedDuringNegotiation
        /// The peer sent more than `maxNegotiationBytes` before agreeing on a protocol.
        case negotiationTooLong
    }

    public enum Directive: Sendable, Equatable {
        /// Bytes for the socket, in order.
        case send([UInt8])
        /// Secure channel and muxer are up: streams can be opened.
        case established(remotePeer: PeerId)
        /// A stream agreed on `protocol` (inbound: the peer chose it; outbound: the peer accepted).
        case streamOpened(StreamID, protocol: String, inbound: Bool)
        /// An outbound or inbound stream never got a protocol; it has been reset.
        case streamFailed(StreamID, StreamFailure)
        /// Stream bytes; report them with `consumed` once read.
        case data(StreamID, ArraySlice<UInt8>)
        /// The peer half-closed the stream.
        case finished(StreamID)
        /// The peer reset the stream; it is gone.
        case reset(StreamID)
        /// Queued writes have drained; write more.
        case writable(StreamID)
        /// Both sides closed the stream; it is gone.
        case streamClosed(StreamID)
        case rtt(Duration)
        /// The peer announced GoAway: no new streams.
        case goAway(Yamux.GoAwayCode)
        /// The connection is over: send any preceding bytes, then close the socket.
        case closed(CloseReason)
    }
}
