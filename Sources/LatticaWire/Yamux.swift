public import LatticaCore

/// yamux (`/yamux/1.0.0`): stream multiplexing with per-stream flow control.
/// Spec: https://github.com/hashicorp/yamux/blob/master/spec.md; receive-window auto-tuning
/// after rust-yamux (`connection/stream/flow_control.rs`). Byte layout: Docs/WIRE.md.
public enum Yamux {
    public static let protocolID = "/yamux/1.0.0"
    public static let headerLength = 12
    /// The spec's initial window of every stream in both directions.
    public static let defaultCredit: UInt32 = 256 * 1024

    public typealias StreamID = UInt32

    public enum FrameType: UInt8, Sendable, Hashable {
        case data = 0, windowUpdate = 1, ping = 2, goAway = 3
    }

    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        public static let syn = Flags(rawValue: 1)
        public static let ack = Flags(rawValue: 2)
        public static let fin = Flags(rawValue: 4)
        public static let rst = Flags(rawValue: 8)
    }

    public enum GoAwayCode: UInt32, Sendable, Hashable {
        case normal = 0, protocolError = 1, internalError = 2
    }

    /// Which side of the connection we are: the dialer (client) uses odd stream ids.
    public enum Role: Sendable, Hashable { case client, server }

    /// The 12-byte frame header, all fields big-endian.
    public struct Header: Sendable, Hashable {
        public var version: UInt8
        public var type: UInt8
        public var flags: Flags
        public var streamID: StreamID
        public var length: UInt32

        public init(type: FrameType, flags: Flags = [], streamID: StreamID, length: UInt32) {
            self.version = 0
            self.type = type.rawValue
            self.flags = flags
            self.streamID = streamID
            self.length = length
        }

        public var frameType: FrameType? { FrameType(rawValue: type) }

        public func encode(into out: inout [UInt8]) {
            out.append(version)
            out.append(type)
            out.append(UInt8(truncatingIfNeeded: flags.rawValue >> 8))
            out.append(UInt8(truncatingIfNeeded: flags.rawValue))
            Header.appendBE(streamID, &out)
            Header.appendBE(length, &out)
        }

        @inline(__always) static func appendBE(_ v: UInt32, _ out: inout [UInt8]) {
            out.append(UInt8(truncatingIfNeeded: v >> 24))
            out.append(UInt8(truncatingIfNeeded: v >> 16))
            out.append(UInt8(truncatingIfNeeded: v >> 8))
            out.append(UInt8(truncatingIfNeeded: v))
        }

        /// Decodes 12 bytes (the caller guarantees the count); any values are representable.
        public init(decoding b: some Collection<UInt8>) {
            precondition(b.count >= Yamux.headerLength)
            var it = b.makeIterator()
            func next() -> UInt8 { it.next()! }
            version = next()
            type = next()
            flags = Flags(rawValue: UInt16(next()) << 8 | UInt16(next()))
            streamID = UInt32(next()) << 24 | UInt32(next()) << 16 | UInt32(next()) << 8 | UInt32(next())
            length = UInt32(next()) << 24 | UInt32(next()) << 16 | UInt32(next()) << 8 | UInt32(next())
        }
    }

    public struct Settings: Sendable, Hashable {
        /// Concurrent streams; inbound streams beyond it are refused with RST (rust-yamux: 512).
        public var maxStreams: Int = 512
        /// Upper bound on the sum of all stream receive windows (rust-yamux: 1 GiB). Each stream is
        /// guaranteed 256 KiB; auto-tuning shares `maxConnectionReceiveWindow - maxStreams * 256 KiB`.
        public var maxConnectionReceiveWindow: Int = 1 << 30
        /// Upper bound of one stream's auto-tuned receive window.
        public var maxStreamReceiveWindow: UInt32 = 16 << 20
        /// Data frames we send carry at most this many bytes (rust-yamux: 16 KiB).
        public var maxFrameBody: Int = 16 * 1024
        /// Data frames longer than this are a protocol violation (rust-yamux: 1 MiB).
        public var maxReceiveFrameBody: UInt32 = 1 << 20
        /// Bytes accepted by `write` but not yet sent (waiting for window), per stream and in total.
        public var maxPendingSendPerStream: Int = 1 << 20
        public var maxPendingSendPerConnection: Int = 16 << 20
        /// Outbound streams not yet acknowledged before `openStream` refuses (rust-yamux: 256).
        public var maxAckBacklog: Int = 256
        /// Interval of RTT pings (rust-yamux: 10 s); the first is sent at `start`.
        public var pingInterval: Duration = .seconds(10)
        /// Frames for a recently closed or reset stream are ignored for this long, then they are a violation.
        public var closedStreamGrace: Duration = .seconds(30)
        /// How many closed stream ids are remembered for the grace check.
        public var rememberedClosedStreams: Int = 1024

        public init() {}
    }

    public enum Violation: Hashable, Sendable {
        case badVersion(UInt8)
        case unknownFrameType(UInt8)
        case dataBeyondWindow(StreamID)
        case frameTooLarge(UInt32)
        case windowOverflow(StreamID)
        case invalidStreamID(StreamID)
        case duplicateStream(StreamID)
        case frameForClosedStream(StreamID)
    }

    public enum Directive: Sendable, Equatable {
        /// Bytes for the wire (already framed).
        case send([UInt8])
        /// The peer opened a stream (already acknowledged).
        case opened(StreamID)
        /// Stream bytes, in order. Report them with `consumed` once the application has read them.
        case data(StreamID, ArraySlice<UInt8>)
        /// The peer half-closed the stream: no more data will arrive.
        case finished(StreamID)
        /// The stream was reset (by the peer, or refused); it is gone.
        case reset(StreamID)
        /// Everything queued by `write` has been sent; more can be written.
        case writable(StreamID)
        /// Both directions closed; the stream is gone.
        case closed(StreamID)
        /// A round-trip time measured with a ping.
        case rtt(Duration)
        /// The peer sent GoAway; no new streams may be opened.
        case goAway(GoAwayCode)
        /// The peer broke the protocol; GoAway(protocolError) was sent and the session is closed.
        case violation(Violation)
    }

    public struct Metrics: Sendable, Hashable {
        public var framesReceived = 0
        public var framesSent = 0
        public var bytesReceived = 0
        public var streamsOpenedInbound = 0
        public var streamsOpenedOutbound = 0
        public var streamsRefused = 0
        public var framesIgnored = 0
        public var windowUpdatesSent = 0
        public var windowGrowths = 0
        public var pingsAnswered = 0
        public var violations = 0
    }
}
