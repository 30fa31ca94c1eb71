import Foundation
import LatticaAPI
import LatticaCore
import Testing
@testable import LatticaNode

/// Every registered control method, called with hostile params over the real socket: huge and
/// negative numbers, NaN, wrong types, missing and extra fields, 1 MiB strings. Each call gets one
/// clean answer line; afterwards the daemon is alive and still correct.
@Suite struct ControlFuzzTests {
    static let numbers = ["0", "-1", "1", "3", "20", "21", "100", "101", "9223372036854775807", "-9223372036854775808",
                          "18446744073709551616", "1e308", "-1e308", "1e-320", "0.5", "2.0", "NaN", "Infinity", "-0"]

    /// One hostile JSON value, as text (NaN and Infinity are not JSON: malformed lines too).
    static func value(_ rng: inout SeededRandom, peer: String, addr: String) -> String {
        switch rng.next() % 12 {
        case 0, 1: return numbers[Int(rng.next() % UInt64(numbers.count))]
        case 2: return ["\"\"", "\"x\"", "\"12D3KooW\"", "\"/ip4/127.0.0.1/tcp/1\"", "\"\\u0000\"", "\"ü\\n\""][Int(rng.next() % 6)]
        case 3: return "\"\(peer)\""
        case 4: return "\"\(addr)\""
        case 5: return ["true", "false", "null"][Int(rng.next() % 3)]
        case 6: return ["[]", "[1,2,\"x\"]", "{}", "{\"a\":{\"b\":[]}}"][Int(rng.next() % 4)]
        case 7: return rng.next() % 8 == 0 ? "\"" + String(repeating: "A", count: 1 << 20) + "\"" : "\"\(String(repeating: "é", count: 300))\""
        case 8: return "\"\(String(rng.next() % 100_000))\""
        default: return "\"00ff\""
        }
    }

    @Test func tenThousandHostileCalls_getCleanErrors_andTheDaemonStaysCorrect() async throws {
        let seed = testSeed(0xC0_47_01)
        print("control fuzz seed \(seed)")
        let tmp = TempDir()
        defer { tmp.cleanup() }
        var ca = NodeConfig(dataDir: tmp.path + "/a"), cb = NodeConfig(dataDir: tmp.path + "/b")
        ca.metricsAddr = nil; cb.metricsAddr = nil
        let a = try await Daemon.start(config: ca), b = try await Daemon.start(config: cb)
        let _: PeerId = try await a.onLoop { s, done in s.dial(b.listenAddrs[0]) { done($0) } }
        let fields = try await a.loop.submit { _ in a.control!.dispatcher.fields }
        let methods = fields.keys.sorted()
        #expect(methods.count >= 10, "\(methods)")
        let client = try ControlClient(socketPath: ca.controlSocketPath, timeoutSeconds: 60)
        let peerB = b.peerId.description, addrB = b.listenAddrs[0].description
        let calls = 10_000
        let answers: [String: Int] = try await blocking { try Self.hammer(client, methods: methods, fields: fields, seed: seed, calls: calls, peer: peerB, addr: addrB) }
        print("control fuzz: \(calls) calls over \(methods.count) methods: \(answers.sorted { $0.key < $1.key })")
        #expect(answers.values.reduce(0, +) == calls)
        #expect((answers["bad_request"] ?? 0) > calls / 2)
        // Alive and correct afterwards: status, a ping, an echo, a DHT round trip.
        let peerA = a.peerId.description
        try await blocking {
            let status = try client.call(Methods.Status.self, NoParams())
            #expect(status.peerId == peerA && status.connectedPeers == 1)
            #expect(try client.call(Methods.Ping.self, .init(peer: peerB, count: 2)).rttsMs.count == 2)
            #expect(try client.call(EchoService.Echo.self, .init(peer: peerB, payload: "ok", count: 1)).rttsMs.count == 1)
            // (b holds at most 32 of a's records, and the fuzz stored some: the table, not a put.)
            let table = try client.call(Methods.DHTTable.self, NoParams())
            #expect(table.buckets.flatMap(\.peers).contains { $0.peerId == peerB && $0.connected })
        }
        await a.stop(); await b.stop()
    }

    static func hammer(_ client: ControlClient, methods: [String], fields: [String: [String]], seed: UInt64, calls: Int,
                       peer: String, addr: String) throws -> [String: Int] {
        var rng = SeededRandom(seed: seed)
        var answers = [String: Int]()
        for i in 0..<calls {
            let m = methods[Int(rng.next() % UInt64(methods.count))]
            var parts: [String] = []
            for f in fields[m] ?? [] where rng.next() % 4 != 0 {  // missing fields
                parts.append("\"\(f)\":" + Self.value(&rng, peer: peer, addr: addr))
            }
            if rng.next() % 6 == 0 { parts.append("\"extra_\(rng.next() % 9)\":" + Self.value(&rng, peer: "", addr: "")) }
            let params = switch rng.next() % 20 {
            case 0: Self.value(&rng, peer: "", addr: "")  // not an object
            case 1: ""  // no params at all
            default: "{" + parts.joined(separator: ",") + "}"
            }
            let line = #"{"v":1,"id":\#(i),"method":"\#(m)""# + (params.isEmpty ? "" : #","params":"# + params) + "}\n"
            try client.sendAll(Array(line.utf8))
            let out = try client.readLine()
            let r = try #require(try? JSONDecoder().decode(ControlResponse<JSONValue>.self, from: Data(out)),
                                 "seed \(seed), call \(i): unreadable answer to \(line.prefix(300))")
            #expect(r.ok || (r.error?.message.isEmpty == false && r.error?.message.count ?? 0 < 2_000), "seed \(seed), call \(i)")
            answers[r.ok ? "ok" : r.error?.code ?? "?", default: 0] += 1
        }
        return answers
    }
}
