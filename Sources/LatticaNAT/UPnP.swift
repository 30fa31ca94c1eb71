import LatticaCore

/// UPnP-IGD port mapping, the pure parts: SSDP discovery (UDP multicast 239.255.255.250:1900),
/// the HTTP/1.1 response parser for the device description and the SOAP answers, a tag scanner
/// for those small XML documents, and the SOAP requests we send (Docs/WIRE-NAT.md draws them).
/// Everything is bounded (`maxResponse`) and total: malformed input is an `UPnP.Error`, never a
/// trap. Only IPv4 literals are followed (no DNS), never a redirect.
public enum UPnP {
    public static let ssdpGroup: [UInt8] = [239, 255, 255, 250]
    public static let ssdpPort: UInt16 = 1900
    /// Cap of any HTTP response (head + body) and of an SSDP datagram we parse.
    public static let maxResponse = 64 * 1024
    public static let maxSSDP = 4 * 1024

    /// The search targets of our M-SEARCH, one datagram each.
    public static let searchTargets = [
        "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
        "urn:schemas-upnp-org:device:InternetGatewayDevice:2",
        "urn:schemas-upnp-org:service:WANIPConnection:1",
        "urn:schemas-upnp-org:service:WANIPConnection:2",
    ]
    /// The services that can map a port, best first.
    public static let serviceTypes = [
        "urn:schemas-upnp-org:service:WANIPConnection:2",
        "urn:schemas-upnp-org:service:WANIPConnection:1",
        "urn:schemas-upnp-org:service:WANPPPConnection:1",
    ]

    public struct Error: Swift.Error, Sendable, Equatable, CustomStringConvertible {
        /// Short label for metrics: `ssdp`, `url`, `off_lan`, `http`, `too_large`, `redirect`,
        /// `xml`, `no_service`, `soap`.
        public var reason: String
        public var message: String
        public init(_ reason: String, _ message: String) { self.reason = reason; self.message = message }
        public var description: String { "\(reason): \(message)" }
    }

    /// An IPv4 network (`addr & mask`).
    public struct Subnet: Sendable, Equatable {
        public var address: [UInt8]
        public var mask: [UInt8]
        public init(address: [UInt8], mask: [UInt8]) { self.address = address; self.mask = mask }
        public func contains(_ ip: [UInt8]) -> Bool {
            ip.count == 4 && address.count == 4 && mask.count == 4 && (0..<4).allSatisfy { ip[$0] & mask[$0] == address[$0] & mask[$0] }
        }
    }

    /// `http://a.b.c.d[:port]/path` (IPv4 literal hosts only).
    public struct URL: Sendable, Equatable, CustomStringConvertible {
        public var host: [UInt8]
        public var port: UInt16
        public var path: String
        public init(host: [UInt8], port: UInt16, path: String) { self.host = host; self.port = port; self.path = path }
        public var hostPort: String { "\(host.map(String.init).joined(separator: ".")):\(port)" }
        public var description: String { "http://\(hostPort)\(path)" }

        public static func parse(_ s: String) -> Result<URL, Error> {
            let t = Substring(s)
            guard t.count <= 1024, t.lowercased().hasPrefix("http://") else { return .failure(Error("url", "not an http:// URL: \(s.prefix(80))")) }
            let rest = t.dropFirst(7)
            let slash = rest.firstIndex(of: "/") ?? rest.endIndex
            let authority = rest[..<slash]
            let path = slash == rest.endIndex ? "/" : String(rest[slash...])
            guard path.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else { return .failure(Error("url", "bad path")) }
            var hostPart = authority, port: UInt16 = 80
            if let colon = authority.lastIndex(of: ":") {
                let p = authority[authority.index(after: colon)...]
                guard !p.isEmpty, p.count <= 5, p.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let v = UInt16(p), v != 0 else {
                    return .failure(Error("url", "bad port in \(s.prefix(80))"))
                }
                port = v
                hostPart = authority[..<colon]
            }
            guard let ip = ipv4(hostPart) else { return .failure(Error("url", "host is not an IPv4 literal: \(hostPart.prefix(64))")) }
            return .success(URL(host: ip, port: port, path: path))
        }

        /// `ref` (absolute or a path) against this URL; an absolute URL must name the same host.
        public func resolve(_ ref: String) -> Result<URL, Error> {
            if ref.lowercased().hasPrefix("http://") {
                switch URL.parse(ref) {
                case .failure(let e): return .failure(e)
                case .success(let u):
                    guard u.host == host else { return .failure(Error("off_lan", "control URL on another host: \(u.hostPort)")) }
                    return .success(u)
                }
            }
            guard !ref.isEmpty, ref.count <= 1024, ref.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }), !ref.contains("://") else {
                return .failure(Error("url", "bad relative URL"))
            }
            return .success(URL(host: host, port: port, path: ref.hasPrefix("/") ? ref : "/" + ref))
        }
    }

    /// `a.b.c.d` as 4 bytes, nil for anything else.
    public static func ipv4<S: StringProtocol>(_ s: S) -> [UInt8]? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let v = UInt8(p) else { return nil }
            out.append(v)
        }
        return out
    }

    // MARK: SSDP

    /// An M-SEARCH request for `target` (UPnP Device Architecture 1.1 §1.3.2).
    public static func mSearch(_ target: String, mx: Int = 2) -> [UInt8] {
        Array(("M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n"
            + "MX: \(mx)\r\nST: \(target)\r\n\r\n").utf8)
    }

    public struct SSDPAnswer: Sendable, Equatable {
        public var location: URL
        public var searchTarget: String
    }

    /// A search answer: `HTTP/1.1 200 OK` with a LOCATION header (an IPv4 http URL).
    public static func parseSSDP(_ b: [UInt8]) -> Result<SSDPAnswer, Error> {
        guard b.count <= maxSSDP else { return .failure(Error("too_large", "SSDP datagram of \(b.count) bytes")) }
        let head: Head
        switch parseHead(b[...], headerEnd: headerEnd(b[...]) ?? b.count) {
        case .failure(let e): return .failure(Error("ssdp", e.message))
        case .success(let h): head = h
        }
        guard head.status == 200 else { return .failure(Error("ssdp", "status \(head.status)")) }
        guard let loc = head.header("location") else { return .failure(Error("ssdp", "no LOCATION")) }
        switch URL.parse(loc) {
        case .failure(let e): return .failure(e)
        case .success(let u): return .success(SSDPAnswer(location: u, searchTarget: head.header("st") ?? ""))
        }
    }

    // MARK: HTTP

    struct Head {
        var status: Int
        var headers: [(String, String)]
        func header(_ name: String) -> String? { headers.first { $0.0 == name }?.1 }
    }

    public struct HTTPResponse: Sendable, Equatable {
        public var status: Int
        public var body: [UInt8]
        public init(status: Int, body: [UInt8]) { self.status = status; self.body = body }
    }

    public enum HTTPParse: Sendable, Equatable {
        case incomplete
        case complete(HTTPResponse)
        case invalid(Error)
    }

    /// The response received so far (`eof`: the server closed). Bodies by Content-Length,
    /// chunked transfer coding, or up to the close; everything capped at `maxResponse`.
    public static func parseHTTP(_ b: [UInt8], eof: Bool) -> HTTPParse {
        guard b.count <= maxResponse else { return .invalid(Error("too_large", "response over \(maxResponse) bytes")) }
        guard let end = headerEnd(b[...]) else {
            return eof ? .invalid(Error("http", "connection closed inside the header")) : .incomplete
        }
        let head: Head
        switch parseHead(b[...], headerEnd: end) {
        case .failure(let e): return .invalid(e)
        case .success(let h): head = h
        }
        if (300..<400).contains(head.status) { return .invalid(Error("redirect", "status \(head.status); redirects are not followed")) }
        let body = b[(end + 4)...]
        if let te = head.header("transfer-encoding"), te.lowercased().contains("chunked") {
            return dechunk(body, status: head.status, eof: eof)
        }
        if let cl = head.header("content-length") {
            guard !cl.isEmpty, cl.count <= 6, cl.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(cl) else { return .invalid(Error("http", "bad Content-Length")) }
            guard n <= maxResponse else { return .invalid(Error("too_large", "Content-Length \(n)")) }
            if body.count >= n { return .complete(HTTPResponse(status: head.status, body: Array(body.prefix(n)))) }
            return eof ? .invalid(Error("http", "closed after \(body.count) of \(n) body bytes")) : .incomplete
        }
        return eof ? .complete(HTTPResponse(status: head.status, body: Array(body))) : .incomplete
    }

    static func dechunk(_ body: ArraySlice<UInt8>, status: Int, eof: Bool) -> HTTPParse {
        var out: [UInt8] = [], i = body.startIndex
        let short: HTTPParse = eof ? .invalid(Error("http", "closed inside a chunk")) : .incomplete
        while true {
            guard let lineEnd = crlf(body, from: i) else { return short }
            let sizeText = String(decoding: body[i..<lineEnd].prefix { $0 != UInt8(ascii: ";") }, as: UTF8.self).trimmingSpaces
            // hex digits only: Int(_:radix:) would also take a sign
            guard !sizeText.isEmpty, sizeText.count <= 6, sizeText.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }),
                  let n = Int(sizeText, radix: 16) else {
                return .invalid(Error("http", "bad chunk size"))
            }
            let start = lineEnd + 2
            if n == 0 { return .complete(HTTPResponse(status: status, body: out)) }
            guard body.endIndex - start >= n + 2 else { return short }
            out += body[start..<(start + n)]
            guard body[start + n] == 13, body[start + n + 1] == 10 else { return .invalid(Error("http", "chunk not followed by CRLF")) }
            i = start + n + 2
        }
    }

    static func crlf(_ b: ArraySlice<UInt8>, from: Int) -> Int? {
        var i = from
        while i + 1 < b.endIndex {
            if b[i] == 13 && b[i + 1] == 10 { return i }
            i += 1
        }
        return nil
    }

    static func headerEnd(_ b: ArraySlice<UInt8>) -> Int? {
        guard b.count >= 4 else { return nil }
        var i = b.startIndex
        while i + 3 < b.endIndex {
            if b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
            i += 1
        }
        return nil
    }

    /// Status line `HTTP/1.x NNN reason` and `Name: value` lines (names lowercased).
    static func parseHead(_ b: ArraySlice<UInt8>, headerEnd end: Int) -> Result<Head, Error> {
        let head = b[b.startIndex..<min(end, b.endIndex)]
        guard head.allSatisfy({ ($0 >= 0x20 && $0 < 0x7f) || $0 == 9 || $0 == 13 || $0 == 10 }) else {
            return .failure(Error("http", "control or non-ASCII bytes in the header"))
        }
        let text = String(decoding: head, as: UTF8.self)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        guard !lines.isEmpty else { return .failure(Error("http", "empty")) }
        let status = lines.removeFirst().split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard status.count >= 2, status[0] == "HTTP/1.1" || status[0] == "HTTP/1.0",
              status[1].count == 3, let code = Int(status[1]), (100...599).contains(code) else {
            return .failure(Error("http", "bad status line"))
        }
        var headers: [(String, String)] = []
        for line in lines where !line.isEmpty {
            guard headers.count < 64, let colon = line.firstIndex(of: ":") else { return .failure(Error("http", "bad header line")) }
            headers.append((line[..<colon].lowercased().trimmingSpaces, String(line[line.index(after: colon)...]).trimmingSpaces))
        }
        return .success(Head(status: code, headers: headers))
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs.
    var trimmingSpaces: String {
        let u = Array(utf8)
        guard let f = u.firstIndex(where: { $0 != 32 && $0 != 9 }), let l = u.lastIndex(where: { $0 != 32 && $0 != 9 }) else { return "" }
        return String(decoding: u[f...l], as: UTF8.self)
    }
}
