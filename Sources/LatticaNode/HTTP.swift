/// The tiny HTTP/1.1 responder of the daemon's HTTP port (`metrics_addr`): `GET` and `HEAD` only,
/// one request per connection, the header bounded to 8 KiB, no request body. It serves
/// `/metrics` (Prometheus) and the routes that services register (`ServiceContext.http`: the
/// dashboard and its JSON API). Transport-free, so it is tested and fuzzed without sockets.
public enum HTTP {
    public static let maxRequestBytes = 8 * 1024

    public enum Outcome: Equatable, Sendable {
        /// Need more bytes.
        case incomplete
        /// Write these bytes and close.
        case respond([UInt8])
    }

    /// A parsed request: what a route handler sees.
    public struct Request: Equatable, Sendable {
        public var method: String
        /// The path without the query (`/api/v1/state`).
        public var path: String
        /// The query after `?`, undecoded (`""` when none).
        public var query: String
        /// The `Host` header (nil when absent).
        public var host: String?
    }

    /// A response from a route handler. Every response also carries `X-Content-Type-Options:
    /// nosniff`, `Cache-Control: no-store` and `Connection: close`.
    public struct Response: Equatable, Sendable {
        public var status: Int
        public var contentType: String
        public var body: [UInt8]
        /// Extra headers (name, value); names and values must not contain CR or LF.
        public var headers: [Header]

        public struct Header: Equatable, Sendable {
            public var name: String
            public var value: String
            public init(_ name: String, _ value: String) { self.name = name; self.value = value }
        }

        public init(status: Int = 200, contentType: String, body: [UInt8], headers: [Header] = []) {
            self.status = status; self.contentType = contentType; self.body = body; self.headers = headers
        }

        public static func text(_ status: Int, _ text: String) -> Response {
            Response(status: status, contentType: "text/plain; charset=utf-8", body: Array(text.utf8))
        }
    }

    /// A route: `handler` answers GET and HEAD of `path` (exact match). `localOnly` routes
    /// answer only a `Host` that names this machine by IP literal or `localhost` (any port),
    /// so that a web page whose DNS name is rebound to 127.0.0.1 cannot read them.
    public struct Route: Sendable {
        public var path: String
        public var localOnly: Bool
        public var handler: @Sendable (Request) -> Response
        public init(path: String, localOnly: Bool, handler: @escaping @Sendable (Request) -> Response) {
            self.path = path; self.localOnly = localOnly; self.handler = handler
        }
    }

    public enum Parsed: Equatable, Sendable {
        case incomplete
        case request(Request)
        /// Malformed, too large or a method other than GET/HEAD: answer this and close.
        case invalid(Response)
    }

    /// Parses the request head received so far.
    public static func parse(_ received: [UInt8]) -> Parsed {
        guard let end = headerEnd(received) else {
            return received.count > maxRequestBytes ? .invalid(.text(431, "request header too large\n")) : .incomplete
        }
        guard end <= maxRequestBytes else { return .invalid(.text(431, "request header too large\n")) }
        let lines = Self.lines(received[..<end])
        // Printable ASCII and spaces, tabs in header values (RFC 9112); anything else is refused.
        guard lines.allSatisfy({ $0.allSatisfy { ($0 >= 0x20 && $0 < 0x7F) || $0 == 9 } }) else { return .invalid(.text(400, "bad request\n")) }
        let requestLine = String(decoding: lines.first ?? [], as: UTF8.self)
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2] == "HTTP/1.1" || parts[2] == "HTTP/1.0", parts[1].hasPrefix("/") else {
            return .invalid(.text(400, "bad request\n"))
        }
        guard parts[0] == "GET" || parts[0] == "HEAD" else { return .invalid(.text(405, "only GET and HEAD\n")) }
        let target = parts[1]
        let q = target.firstIndex(of: "?")
        var host: String?
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return .invalid(.text(400, "bad header\n")) }
            let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self)
            guard name.lowercased() == "host" else { continue }
            guard host == nil else { return .invalid(.text(400, "two Host headers\n")) }
            host = String(decoding: trimmed(line[(colon + 1)...]), as: UTF8.self)
        }
        return .request(Request(method: String(parts[0]), path: String(target[..<(q ?? target.endIndex)]),
                                query: q.map { String(target[target.index(after: $0)...]) } ?? "", host: host))
    }

    /// Parses and routes: the bytes to answer with once the head is complete.
    public static func handle(_ received: [UInt8], routes: [String: Route]) -> Outcome {
        switch parse(received) {
        case .incomplete: return .incomplete
        case .invalid(let r): return .respond(serialize(r, head: false))
        case .request(let req):
            guard let route = routes[req.path] else { return .respond(serialize(.text(404, "not found; try / or /metrics\n"), head: req.method == "HEAD")) }
            if route.localOnly, !isLocalHost(req.host) {
                return .respond(serialize(.text(403, "this page answers only Host: localhost or an IP address\n"), head: req.method == "HEAD"))
            }
            return .respond(serialize(route.handler(req), head: req.method == "HEAD"))
        }
    }

    /// True for a missing Host (HTTP/1.0), `localhost`, an IPv4 literal or a bracketed IPv6
    /// literal, each with an optional port: names that no DNS answer can rebind.
    static func isLocalHost(_ host: String?) -> Bool {
        guard let h = host?.lowercased() else { return true }
        var name = Substring(h)
        if name.hasPrefix("[") {
            guard let close = name.firstIndex(of: "]") else { return false }
            let rest = name[name.index(after: close)...]
            guard rest.isEmpty || isPort(rest) else { return false }
            return name[name.index(after: name.startIndex)..<close].allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
        }
        if let colon = name.lastIndex(of: ":") {
            guard isPort(name[colon...]) else { return false }
            name = name[..<colon]
        }
        if name == "localhost" { return true }
        let octets = name.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets.allSatisfy { o in !o.isEmpty && o.count <= 3 && o.allSatisfy(\.isASCIIDigit) && Int(o)! <= 255 }
    }

    /// `:` followed by 1…5 digits.
    static func isPort(_ s: Substring) -> Bool {
        s.first == ":" && (2...6).contains(s.count) && s.dropFirst().allSatisfy(\.isASCIIDigit)
    }

    /// Without leading and trailing spaces and tabs.
    static func trimmed(_ b: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        let blank: (UInt8) -> Bool = { $0 == 32 || $0 == 9 }
        guard let first = b.firstIndex(where: { !blank($0) }), let last = b.lastIndex(where: { !blank($0) }) else { return [] }
        return b[first...last]
    }

    /// The CRLF-separated lines of a request head.
    static func lines(_ head: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        var out: [ArraySlice<UInt8>] = []
        var start = head.startIndex, i = head.startIndex
        while i + 1 < head.endIndex {
            if head[i] == 13 && head[i + 1] == 10 {
                out.append(head[start..<i])
                i += 2
                start = i
            } else {
                i += 1
            }
        }
        out.append(head[start...])
        return out
    }

    static func headerEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
        return nil
    }

    static let reasons = [200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
                          431: "Request Header Fields Too Large", 500: "Internal Server Error"]

    public static func serialize(_ r: Response, head: Bool) -> [UInt8] {
        var h = "HTTP/1.1 \(r.status) \(reasons[r.status] ?? "Error")\r\nContent-Type: \(r.contentType)\r\n"
        h += "Content-Length: \(r.body.count)\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n"
        for x in r.headers where !(x.name + x.value).contains(where: { $0 == "\r" || $0 == "\n" }) { h += "\(x.name): \(x.value)\r\n" }
        h += "Connection: close\r\n\r\n"
        var out = Array(h.utf8)
        if !head { out += r.body }
        return out
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
