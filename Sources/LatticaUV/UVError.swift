import CLibUV

/// An error from the libuv shell: what was being done, the libuv status code, and a readable text.
///
/// `code` is the negative errno libuv reports (`UV_ECONNREFUSED`, ...); `kind` classifies it for
/// callers that branch on the outcome. Shell-level conditions with no errno of their own
/// (`loopClosed`, `writeQueueFull`, `timedOut`) carry the closest libuv code.
public struct UVError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        case connectionRefused, connectionReset, timedOut, cancelled, addressInUse,
             brokenPipe, notConnected, invalidArgument, writeQueueFull, closed, loopClosed, other
    }

    public var kind: Kind
    /// Negative libuv status code (0 when the error has none).
    public var code: Int32
    /// The operation that failed, e.g. "connect 127.0.0.1:1".
    public var operation: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
        self.kind = switch code {
        case UV_ECONNREFUSED.rawValue: .connectionRefused
        case UV_ECONNRESET.rawValue: .connectionReset
        case UV_ETIMEDOUT.rawValue: .timedOut
        case UV_ECANCELED.rawValue: .cancelled
        case UV_EADDRINUSE.rawValue: .addressInUse
        case UV_EPIPE.rawValue: .brokenPipe
        case UV_ENOTCONN.rawValue: .notConnected
        case UV_EINVAL.rawValue: .invalidArgument
        case UV_ENOBUFS.rawValue: .writeQueueFull
        default: .other
        }
    }

    public init(kind: Kind, operation: String) {
        self.kind = kind
        self.operation = operation
        self.code = switch kind {
        case .timedOut: UV_ETIMEDOUT.rawValue
        case .writeQueueFull: UV_ENOBUFS.rawValue
        case .closed, .loopClosed, .cancelled: UV_ECANCELED.rawValue
        case .connectionRefused: UV_ECONNREFUSED.rawValue
        case .connectionReset: UV_ECONNRESET.rawValue
        case .addressInUse: UV_EADDRINUSE.rawValue
        case .brokenPipe: UV_EPIPE.rawValue
        case .notConnected: UV_ENOTCONN.rawValue
        case .invalidArgument: UV_EINVAL.rawValue
        case .other: 0
        }
    }

    /// libuv's symbolic name of the code, e.g. "ECONNREFUSED".
    public var name: String {
        switch kind {
        case .loopClosed: return "LOOP_CLOSED"
        case .writeQueueFull: return "WRITE_QUEUE_FULL"
        case .closed: return "CLOSED"
        default: return code == 0 ? "UNKNOWN" : String(cString: uv_err_name(code))
        }
    }

    public var description: String {
        switch kind {
        case .loopClosed: return "\(operation) failed: the event loop is shut down"
        case .writeQueueFull: return "\(operation) failed: write queue full (peer too slow)"
        case .closed: return "\(operation) failed: the handle is closed"
        case .timedOut where code == UV_ETIMEDOUT.rawValue: return "\(operation) failed: timed out"
        default: return "\(operation) failed: \(name) (\(code == 0 ? "unknown" : String(cString: uv_strerror(code))))"
        }
    }

    static func check(_ status: Int32, _ operation: @autoclosure () -> String) throws(UVError) {
        if status < 0 { throw UVError(code: status, operation: operation()) }
    }
}
