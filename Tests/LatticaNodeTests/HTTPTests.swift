import Foundation
import LatticaCore
import Testing
@testable import LatticaNode

/// The HTTP port's request parsing and routing, without sockets.
@Suite struct HTTPTests {
    static let routes: [String: HTTP.Route] = [
        "/metrics": HTTP.Route(path: "/metrics", localOnly: false) { _ in .text(200, "x 1\n") },
        "/api": HTTP.Route(path: "/api", localOnly: true) { r in .text(200, "q=\(r.query)") },
    ]

    static func answer(_ s: String) -> (status: String, head: String, body: String)? {
        guard case .respond(let b) = HTTP.handle(Array(s.utf8), routes: routes) else { return nil }
        let text = String(decoding: b, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        return (String(parts[0].split(separator: "\r\n")[0]), parts[0], parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    @Test func routes_answerGetAndHead_only_andTheHostOfALocalRouteMustNameThisMachine() {
        #expect(Self.answer("GET /api?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9100\r\n\r\n")?.body == "q=x=1")
        #expect(Self.answer("GET /api HTTP/1.1\r\nhost:  localhost:9100 \r\n\r\n")?.status == "HTTP/1.1 200 OK")
        #expect(Self.answer("GET /api HTTP/1.1\r\nHost: [::1]:9100\r\n\r\n")?.status == "HTTP/1.1 200 OK")
        #expect(Self.answer("GET /api HTTP/1.0\r\n\r\n")?.status == "HTTP/1.1 200 OK")  // no Host: a local client
        for host in ["evil.example", "127.0.0.1.evil.example", "localhost.evil.example:80", "", "127.0.0.1:99999999", "[::1]x", "300.0.0.1"] {
            #expect(Self.answer("GET /api HTTP/1.1\r\nHost: \(host)\r\n\r\n")?.status == "HTTP/1.1 403 Forbidden", "\(host)")
        }
        #expect(Self.answer("GET /metrics HTTP/1.1\r\nHost: node7.example:9100\r\n\r\n")?.status == "HTTP/1.1 200 OK")
        #expect(Self.answer("GET /api HTTP/1.1\r\nHost: a\r\nHost: 127.0.0.1\r\n\r\n")?.status == "HTTP/1.1 400 Bad Request")
        let head = Self.answer("HEAD /metrics HTTP/1.1\r\n\r\n")
        #expect(head?.status == "HTTP/1.1 200 OK" && head?.body == "" && head?.head.contains("Content-Length: 4") == true)
        #expect(Self.answer("POST /api HTTP/1.1\r\n\r\n")?.status == "HTTP/1.1 405 Method Not Allowed")
        #expect(Self.answer("GET api HTTP/1.1\r\n\r\n")?.status == "HTTP/1.1 400 Bad Request")
        #expect(Self.answer("GET /é HTTP/1.1\r\n\r\n")?.status == "HTTP/1.1 400 Bad Request")  // printable ASCII only
        #expect(Self.answer("GET /api HTTP/1.1\r\nHost: 127.0.0.1\u{0}\r\n\r\n")?.status == "HTTP/1.1 400 Bad Request")
        #expect(Self.answer("GET /nope HTTP/1.1\r\n\r\n")?.status == "HTTP/1.1 404 Not Found")
        #expect(Self.answer("GET /api HTTP/1.1\r\nno colon\r\n\r\n")?.status == "HTTP/1.1 400 Bad Request")
        #expect(Self.answer("GET /api HTTP/1.1\r\nHost: 127.0.0.1") == nil)  // waits for the rest
        #expect(Self.answer("GET /api HTTP/1.1\r\n" + String(repeating: "X-A: b\r\n", count: 1200) + "\r\n")?.status
                == "HTTP/1.1 431 Request Header Fields Too Large")
        #expect(Self.answer("GET /metrics HTTP/1.1\r\n\r\n")?.head.contains("X-Content-Type-Options: nosniff") == true)
    }

    /// Random and mutated requests: the parser waits or answers one well-formed response with a
    /// known status; it never traps and never waits past the header bound.
    @Test func requestParsing_neverTraps_onHostileBytes() {
        let seed = testSeed(0xDA5B)
        var rng = SeededRandom(seed: seed)
        let valid = ["GET /api HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n", "HEAD /metrics HTTP/1.0\r\nA: b\r\n\r\n",
                     "GET /api?x=%3c HTTP/1.1\r\nHost: [::1]\r\nUser-Agent: x\r\n\r\n"].map { Array($0.utf8) }
        let alphabet = Array("GETHAD /?:\r\n[]1.0x%".utf8)
        var seen: [String: Int] = [:]
        var failures: [String] = []
        for i in 0..<20_000 {
            var b = valid[Int(rng.next() % UInt64(valid.count))]
            switch i % 5 {
            case 0: b = (0..<Int(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case 1: for _ in 0..<(1 + rng.next() % 4) { b[Int(rng.next() % UInt64(b.count))] = alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            case 2: b = Array(b.prefix(Int(rng.next() % UInt64(b.count + 1))))
            case 3: b.insert(contentsOf: (0..<Int(rng.next() % 40)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] },
                             at: Int(rng.next() % UInt64(b.count + 1)))
            default: b = Array(b.dropLast(4)) + (0..<Int(rng.next() % 9000)).map { _ in UInt8(truncatingIfNeeded: rng.next()) } + Array("\r\n\r\n".utf8)
            }
            // (Plain checks in the loop, one #expect after it: #expect costs a backtrace per call.)
            switch HTTP.handle(b, routes: Self.routes) {
            case .incomplete:
                if b.count > HTTP.maxRequestBytes, failures.count < 5 { failures.append("case \(i): waits on \(b.count) bytes") }
                seen["incomplete", default: 0] += 1
            case .respond(let out):
                let line = String(decoding: out.prefix(while: { $0 != 13 }), as: UTF8.self)
                let code = line.split(separator: " ").dropFirst().first.map(String.init) ?? ""
                if !(line.hasPrefix("HTTP/1.1 ") && ["200", "400", "403", "404", "405", "431"].contains(code)), failures.count < 5 {
                    failures.append("case \(i): \(line)")
                }
                seen[code, default: 0] += 1
            }
        }
        #expect(failures.isEmpty, "seed \(seed): \(failures)")
        #expect(["incomplete", "200", "400", "403", "404", "431"].allSatisfy { seen[$0, default: 0] > 0 }, "seed \(seed): \(seen)")
    }
}
