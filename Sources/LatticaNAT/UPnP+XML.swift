import LatticaCore

extension UPnP {
    /// A minimal XML tag scanner for device descriptions and SOAP envelopes (a few KiB): start
    /// and end tags by local name (prefix dropped), text with the five predefined entities and
    /// numeric references decoded. Comments, processing instructions and `<!…>` are skipped;
    /// CDATA is text. It does not validate nesting beyond a depth bound; what it cannot read
    /// is an `Error("xml", …)`.
    public enum Token: Sendable, Equatable {
        case open(String)
        case close(String)
        case text(String)
    }

    public static let maxDepth = 32

    public static func scan(_ b: [UInt8]) -> Result<[Token], Error> {
        guard b.count <= maxResponse else { return .failure(Error("too_large", "XML of \(b.count) bytes")) }
        var out: [Token] = [], i = 0, depth = 0
        func find(_ needle: [UInt8], from: Int) -> Int? {
            guard needle.count <= b.count else { return nil }
            var j = from
            while j + needle.count <= b.count {
                if b[j] == needle[0] && Array(b[j..<(j + needle.count)]) == needle { return j }
                j += 1
            }
            return nil
        }
        while i < b.count {
            if b[i] != UInt8(ascii: "<") {
                let end = b[i...].firstIndex(of: UInt8(ascii: "<")) ?? b.count
                guard let t = unescape(b[i..<end]) else { return .failure(Error("xml", "bad entity")) }
                if !t.allSatisfy({ $0 == " " || $0 == "\n" || $0 == "\r" || $0 == "\t" }) { out.append(.text(t)) }
                i = end
                continue
            }
            if b[i...].starts(with: Array("<!--".utf8)) {
                guard let e = find(Array("-->".utf8), from: i + 4) else { return .failure(Error("xml", "unterminated comment")) }
                i = e + 3
            } else if b[i...].starts(with: Array("<![CDATA[".utf8)) {
                guard let e = find(Array("]]>".utf8), from: i + 9) else { return .failure(Error("xml", "unterminated CDATA")) }
                out.append(.text(String(decoding: b[(i + 9)..<e], as: UTF8.self)))
                i = e + 3
            } else if i + 1 < b.count, b[i + 1] == UInt8(ascii: "?") || b[i + 1] == UInt8(ascii: "!") {
                guard let e = b[i...].firstIndex(of: UInt8(ascii: ">")) else { return .failure(Error("xml", "unterminated declaration")) }
                i = e + 1
            } else {
                guard let e = b[i...].firstIndex(of: UInt8(ascii: ">")) else { return .failure(Error("xml", "unterminated tag")) }
                var inner = b[(i + 1)..<e]
                let closing = inner.first == UInt8(ascii: "/")
                let selfClosing = !closing && inner.last == UInt8(ascii: "/")
                if closing { inner = inner.dropFirst() }
                if selfClosing { inner = inner.dropLast() }
                let nameBytes = inner.prefix { $0 != 32 && $0 != 9 && $0 != 10 && $0 != 13 }
                guard !nameBytes.isEmpty, nameBytes.count <= 128,
                      nameBytes.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "<") && $0 != UInt8(ascii: "/") }) else {
                    return .failure(Error("xml", "bad tag name"))
                }
                var name = String(decoding: nameBytes, as: UTF8.self)
                if let colon = name.lastIndex(of: ":") { name = String(name[name.index(after: colon)...]) }
                if closing {
                    depth -= 1
                    guard depth >= 0 else { return .failure(Error("xml", "close tag without an open one")) }
                    out.append(.close(name))
                } else {
                    out.append(.open(name))
                    if selfClosing { out.append(.close(name)) } else {
                        depth += 1
                        guard depth <= maxDepth else { return .failure(Error("xml", "nested deeper than \(maxDepth)")) }
                    }
                }
                i = e + 1
            }
        }
        return .success(out)
    }

    /// Text with `&amp;` `&lt;` `&gt;` `&quot;` `&apos;` `&#N;` `&#xH;` decoded; nil when malformed.
    static func unescape(_ b: ArraySlice<UInt8>) -> String? {
        guard b.contains(UInt8(ascii: "&")) else { return String(decoding: b, as: UTF8.self) }
        var out = "", i = b.startIndex
        while i < b.endIndex {
            guard b[i] == UInt8(ascii: "&") else {
                let end = b[i...].firstIndex(of: UInt8(ascii: "&")) ?? b.endIndex
                out += String(decoding: b[i..<end], as: UTF8.self)
                i = end
                continue
            }
            guard let semi = b[i...].prefix(12).firstIndex(of: UInt8(ascii: ";")) else { return nil }
            let ent = String(decoding: b[(i + 1)..<semi], as: UTF8.self)
            switch ent {
            case "amp": out += "&"
            case "lt": out += "<"
            case "gt": out += ">"
            case "quot": out += "\""
            case "apos": out += "'"
            default:
                guard ent.hasPrefix("#") else { return nil }
                let num = ent.dropFirst()
                let v = num.hasPrefix("x") ? UInt32(num.dropFirst(), radix: 16) : UInt32(num, radix: 10)
                guard let v, let scalar = Unicode.Scalar(v) else { return nil }
                out.unicodeScalars.append(scalar)
            }
            i = semi + 1
        }
        return out
    }

    /// `s` safe inside XML text: `&`, `<`, `>`, quotes escaped.
    public static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(c)
            }
        }
        return out
    }

    // MARK: device description

    public struct Service: Sendable, Equatable {
        public var serviceType: String
        public var controlURL: URL
        public init(serviceType: String, controlURL: URL) { self.serviceType = serviceType; self.controlURL = controlURL }
    }

    /// The best port-mapping service of a device description (`serviceTypes` order), its
    /// controlURL resolved against `URLBase` or else `location`; off-host URLs are refused.
    public static func parseDescription(_ body: [UInt8], location: URL) -> Result<Service, Error> {
        let tokens: [Token]
        switch scan(body) {
        case .failure(let e): return .failure(e)
        case .success(let t): tokens = t
        }
        var base = location
        var found: [(type: String, control: String)] = []
        var stack: [String] = [], type = "", control = "", text = ""
        for t in tokens {
            switch t {
            case .open(let n):
                stack.append(n); text = ""
                if n == "service" { type = ""; control = "" }
            case .text(let s):
                text += s
            case .close(let n):
                guard stack.last == n else { return .failure(Error("xml", "</\(n)> closes <\(stack.last ?? "-")>")) }
                stack.removeLast()
                let parent = stack.last
                let value = text.trimmingSpaces
                switch (n, parent) {
                case ("serviceType", "service"): type = value
                case ("controlURL", "service"): control = value
                case ("service", _): if !type.isEmpty && !control.isEmpty { found.append((type, control)) }
                case ("URLBase", "root"):
                    if case .success(let u) = URL.parse(value) {
                        guard u.host == location.host else { return .failure(Error("off_lan", "URLBase on another host: \(u.hostPort)")) }
                        base = u
                    }
                default: break
                }
                text = ""
            }
        }
        guard stack.isEmpty else { return .failure(Error("xml", "unclosed <\(stack.last ?? "")>")) }
        for want in serviceTypes {
            guard let s = found.first(where: { $0.type == want }) else { continue }
            return base.resolve(s.control).map { Service(serviceType: want, controlURL: $0) }
        }
        return .failure(Error("no_service", "no WANIPConnection or WANPPPConnection service among \(found.count)"))
    }

    // MARK: SOAP

    /// An HTTP GET of `url` (the device description).
    public static func getRequest(_ url: URL) -> [UInt8] {
        Array("GET \(url.path) HTTP/1.1\r\nHost: \(url.hostPort)\r\nConnection: close\r\nUser-Agent: latticad UPnP/1.1\r\n\r\n".utf8)
    }

    /// A SOAP action POST: `args` in order, values escaped.
    public static func soapRequest(_ service: Service, action: String, args: [(String, String)]) -> [UInt8] {
        var body = "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
        body += "s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>"
        body += "<u:\(action) xmlns:u=\"\(escape(service.serviceType))\">"
        for (k, v) in args { body += "<\(k)>\(escape(v))</\(k)>" }
        body += "</u:\(action)></s:Body></s:Envelope>\r\n"
        let u = service.controlURL
        let head = "POST \(u.path) HTTP/1.1\r\nHost: \(u.hostPort)\r\nContent-Type: text/xml; charset=\"utf-8\"\r\n"
            + "SOAPAction: \"\(service.serviceType)#\(action)\"\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
        return Array((head + body).utf8)
    }

    public enum SOAPAnswer: Sendable, Equatable {
        /// `<u:ActionResponse>`'s children, name → text.
        case ok([String: String])
        /// A UPnPError: errorCode (e.g. 725 OnlyPermanentLeasesSupported), errorDescription.
        case fault(code: Int, description: String)
    }

    /// A SOAP answer to `action`: HTTP 200 with `<actionResponse>`, or HTTP 500 with a UPnPError.
    public static func parseSOAP(_ r: HTTPResponse, action: String) -> Result<SOAPAnswer, Error> {
        guard r.status == 200 || r.status == 500 else { return .failure(Error("soap", "HTTP status \(r.status)")) }
        let tokens: [Token]
        switch scan(r.body) {
        case .failure(let e): return .failure(e)
        case .success(let t): tokens = t
        }
        var stack: [String] = [], text = "", values: [String: String] = [:], inResponse = false, sawResponse = false
        var code: Int?, desc = ""
        for t in tokens {
            switch t {
            case .open(let n):
                stack.append(n); text = ""
                if n == action + "Response" { inResponse = true; sawResponse = true }
            case .text(let s): text += s
            case .close(let n):
                guard stack.last == n else { return .failure(Error("xml", "</\(n)> closes <\(stack.last ?? "-")>")) }
                stack.removeLast()
                if n == action + "Response" { inResponse = false }
                else if inResponse, stack.last == action + "Response", values.count < 32 { values[n] = text.trimmingSpaces }
                else if n == "errorCode" { code = Int(text.trimmingSpaces) }
                else if n == "errorDescription" { desc = String(text.trimmingSpaces.prefix(200)) }
                text = ""
            }
        }
        guard stack.isEmpty else { return .failure(Error("xml", "unclosed <\(stack.last ?? "")>")) }
        if r.status == 500 {
            guard let code else { return .failure(Error("soap", "HTTP 500 without a UPnP errorCode")) }
            return .success(.fault(code: code, description: desc))
        }
        guard sawResponse else { return .failure(Error("soap", "no <\(action)Response>")) }
        return .success(.ok(values))
    }
}
