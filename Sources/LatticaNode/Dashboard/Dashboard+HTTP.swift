import FoundationEssentials

extension Dashboard {
    /// Headers of every dashboard response: no script or style from anywhere but this origin,
    /// no inline script, no eval, no framing, no referrer.
    static let securityHeaders: [HTTP.Response.Header] = [
        .init("Content-Security-Policy",
              "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
              + "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
        .init("Referrer-Policy", "no-referrer"),
        .init("X-Frame-Options", "DENY"),
    ]

    static func response(_ body: [UInt8], contentType: String) -> HTTP.Response {
        HTTP.Response(contentType: contentType, body: body, headers: securityHeaders)
    }

    enum EncodeFailure: String, Error { case encode, tooLarge = "too_large" }

    /// JSON with `<`, `>` and `&` written as `\u003c`, `\u003e`, `\u0026` (as Go's encoder does), so
    /// that a peer's text cannot form markup even where JSON ends up inside HTML. Non-finite
    /// numbers must have been made nil before (JSONEncoder refuses them).
    static func encode<T: Encodable>(_ value: T, limit: Int) -> Result<[UInt8], EncodeFailure> {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data: Data
        do { data = try encoder.encode(value) } catch { return .failure(.encode) }
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 64)
        for b in data {
            switch b {
            case UInt8(ascii: "<"): out += Array("\\u003c".utf8)
            case UInt8(ascii: ">"): out += Array("\\u003e".utf8)
            case UInt8(ascii: "&"): out += Array("\\u0026".utf8)
            default: out.append(b)
            }
        }
        guard out.count <= limit else { return .failure(.tooLarge) }
        return .success(out)
    }

    /// At most `bytes` UTF-8 bytes of `s`, cut at a scalar boundary, `…` appended when cut.
    static func clip(_ s: String, bytes: Int) -> String {
        guard s.utf8.count > bytes else { return s }
        var out = String.UnicodeScalarView()
        var n = 0
        for u in s.unicodeScalars {
            n += UTF8.width(u)
            if n > bytes - 3 { break }
            out.append(u)
        }
        return String(out) + "…"
    }
}
