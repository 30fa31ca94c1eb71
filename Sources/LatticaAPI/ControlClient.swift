import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// An error talking to the daemon, with the socket path it tried. One line.
public struct ControlClientError: Error, CustomStringConvertible, Sendable {
    public var socketPath: String
    public var message: String
    public var description: String { message }

    public init(socketPath: String, message: String) { self.socketPath = socketPath; self.message = message }
}

/// A blocking client for the control socket (one request, one response per call).
public final class ControlClient {
    public let socketPath: String
    private var fd: Int32 = -1
    private var nextId: UInt64 = 1
    private var buffer: [UInt8] = []

    public init(socketPath: String, timeoutSeconds: Int = 30) throws(ControlClientError) {
        self.socketPath = socketPath
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(socketPath.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            throw ControlClientError(socketPath: socketPath, message: "control socket path is too long: \(socketPath)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            p.copyBytes(from: pathBytes)
            p[pathBytes.count] = 0
        }
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw ControlClientError(socketPath: socketPath, message: "socket(): \(String(cString: strerror(errno)))") }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 {
            let e = errno
            close(s)
            let why = String(cString: strerror(e))
            let hint = (e == ENOENT || e == ECONNREFUSED) ? "no latticad running? " : ""
            throw ControlClientError(socketPath: socketPath,
                                     message: "\(hint)cannot connect to control socket \(socketPath): \(why)")
        }
        fd = s
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Sends one request and decodes the typed result.
    public func call<R: Codable & Sendable>(_ method: String, params: JSONValue? = nil, as: R.Type = R.self) throws(ControlClientError) -> R {
        let line = try roundTrip(method, params: params)
        let resp: ControlResponse<R>
        do { resp = try JSONDecoder().decode(ControlResponse<R>.self, from: Data(line)) } catch {
            throw fail("daemon sent a response this client cannot read (\(error))")
        }
        if let e = resp.error { throw fail("\(method) failed: \(e.message) [\(e.code)]") }
        guard resp.ok, let r = resp.result else { throw fail("\(method): empty response from daemon") }
        return r
    }

    /// Calls a typed method.
    public func call<M: ControlMethod>(_ m: M.Type, _ params: M.Params) throws(ControlClientError) -> M.Result {
        let line = try roundTrip(m, params)
        let resp: ControlResponse<M.Result>
        do { resp = try JSONDecoder().decode(ControlResponse<M.Result>.self, from: Data(line)) } catch {
            throw fail("daemon sent a response this client cannot read (\(error))")
        }
        if let e = resp.error { throw fail("\(M.name) failed: \(e.message) [\(e.code)]") }
        guard resp.ok, let r = resp.result else { throw fail("\(M.name): empty response from daemon") }
        return r
    }

    /// Calls a typed method and returns the raw response line (for `--json` passthrough).
    public func roundTrip<M: ControlMethod>(_ m: M.Type, _ params: M.Params) throws(ControlClientError) -> [UInt8] {
        let req = TypedRequest(v: ControlAPI.version, id: nextId, method: M.name, params: params)
        nextId += 1
        guard var bytes = try? JSONEncoder.controlAPI.encode(req) else { throw fail("cannot encode request") }
        bytes.append(UInt8(ascii: "\n"))
        try sendAll(Array(bytes))
        return try readLine()
    }

    /// Sends one request and returns the raw response line (for `--json` passthrough and tests).
    public func roundTrip(_ method: String, params: JSONValue? = nil) throws(ControlClientError) -> [UInt8] {
        let req = ControlRequest(id: nextId, method: method, params: params)
        nextId += 1
        guard var bytes = try? JSONEncoder.controlAPI.encode(req) else { throw fail("cannot encode request") }
        bytes.append(UInt8(ascii: "\n"))
        try sendAll(Array(bytes))
        return try readLine()
    }

    /// Writes raw bytes (tests use this to send malformed requests).
    public func sendAll(_ bytes: [UInt8]) throws(ControlClientError) {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw fail("writing to control socket \(socketPath): \(String(cString: strerror(errno)))")
            }
            off += n
        }
    }

    /// Reads one newline-terminated line.
    public func readLine() throws(ControlClientError) -> [UInt8] {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            if let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(buffer[..<nl])
                buffer.removeSubrange(...nl)
                return line
            }
            if buffer.count > ControlAPI.maxLineBytes { throw fail("response from daemon exceeds \(ControlAPI.maxLineBytes) bytes") }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN { throw fail("daemon did not answer within the timeout on \(socketPath)") }
                throw fail("reading control socket \(socketPath): \(String(cString: strerror(errno)))")
            }
            if n == 0 { throw fail("daemon closed the control connection on \(socketPath)") }
            buffer.append(contentsOf: chunk[..<n])
        }
    }

    private func fail(_ m: String) -> ControlClientError { ControlClientError(socketPath: socketPath, message: m) }
}

private struct TypedRequest<P: Encodable>: Encodable {
    var v: Int
    var id: UInt64
    var method: String
    var params: P
}
