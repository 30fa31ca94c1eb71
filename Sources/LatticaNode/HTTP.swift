/// The tiny HTTP/1.1 responder behind the Prometheus endpoint: `GET /metrics` only, one request per
/// connection, headers bounded. Transport-free so it is tested without sockets.
public enum MetricsHTTP {
    public static let maxRequestBytes = 8 * 1024

    public enum Outcome: Equatable, Sendable {
        /// Need more bytes.
        case incomplete
        /// Write these bytes and close.
        case respond([UInt8])
    }

    /// Inspects the bytes received so far; `body` renders the exposition text when asked for.
    public static func handle(_ received: [UInt8], body: () -> [UInt8]) -> Outcome {
        guard let end = headerEnd(received) else {
            return received.count > maxRequestBytes ? .respond(response(431, "request header too large\n")) : .incomplete
        }
        let head = String(decoding: received[..<end], as: UTF8.self)
        let requestLine = head.split(separator: "\r\n", maxSplits: 1).first.map(String.init) ?? ""
        let parts = requestLine.split(separator: " ")
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else { return .respond(response(400, "bad request\n")) }
        guard parts[0] == "GET" || parts[0] == "HEAD" else { return .respond(response(405, "only GET\n")) }
        let path = parts[1].split(separator: "?", maxSplits: 1).first ?? ""
        guard path == "/metrics" else { return .respond(response(404, "not found; try /metrics\n")) }
        let b = body()
        return .respond(response(200, b, contentType: "text/plain; version=0.0.4; charset=utf-8", head: parts[0] == "HEAD"))
    }

    static func headerEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
        return nil
    }

    static func response(_ code: Int, _ text: String) -> [UInt8] {
        response(code, Array(text.utf8), contentType: "text/plain; charset=utf-8", head: false)
    }

    static func response(_ code: Int, _ body: [UInt8], contentType: String, head: Bool) -> [UInt8] {
        let reason = [200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 431: "Request Header Fields Too Large"][code] ?? "Error"
        var out = Array("HTTP/1.1 \(code) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8)
        if !head { out += body }
        return out
    }
}
