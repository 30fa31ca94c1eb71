import LatticaCore
import LatticaNAT
import LatticaUV
import Testing
@testable import LatticaNode

/// `[portmap]` parsing and the UPnP HTTP exchange over real loopback sockets (the protocol logic
/// is tested without sockets in LatticaNATTests; the whole path against miniupnpd in
/// `Scripts/testnet/run.sh portmap`).
@Suite struct PortMappingTests {
    func settings(_ t: [String: TOML.Value]) throws(ConfigError) -> PortMappingService.Settings {
        try PortMappingService.settings(TableReader(table: t, prefix: "portmap.", source: "test"))
    }

    @Test func protocols_defaultToPCPThenNATPMPThenUPnP_andAreChecked() throws {
        #expect(try settings([:]).protocols == [.pcp, .natpmp, .upnp])
        #expect(try settings(["protocols": .array([.string("upnp"), .string("nat-pmp")])]).protocols == [.upnp, .natpmp])
        #expect(try settings(["protocols": .array([])]).protocols.isEmpty)
        #expect(throws: ConfigError.self) { try settings(["protocols": .array([.string("igd")])]) }
        #expect(throws: ConfigError.self) { try settings(["protocols": .array([.string("pcp"), .string("pcp")])]) }
        #expect(throws: ConfigError.self) { try settings(["gateway": .string("router.lan")]) }
    }

    /// A one-shot TCP server on loopback that answers every connection with `chunks`, written
    /// one by one, then closes (or stays silent when `chunks` is empty).
    final class Server: @unchecked Sendable {
        var listener: TCPListener?
        var held: [TCPSocket] = []
        var port: UInt16 = 0
    }

    func exchange(_ chunks: [[UInt8]], timeout: Duration = .seconds(5)) async throws -> Result<UPnP.HTTPResponse, UPnP.Error> {
        let loop = EventLoop(name: "portmap-test")
        do {
            let r = try await exchange(chunks, timeout: timeout, on: loop)
            await loop.shutdownGracefully()
            return r
        } catch {
            await loop.shutdownGracefully()
            throw error
        }
    }

    func exchange(_ chunks: [[UInt8]], timeout: Duration, on loop: EventLoop) async throws -> Result<UPnP.HTTPResponse, UPnP.Error> {
        let server = Server()
        try await loop.submit { loop in
            let l = try TCPListener.listen(on: loop, address: .loopback(port: 0)) { r in
                guard case .success(let s) = r else { return }
                server.held.append(s)
                s.onData = { _ in
                    guard !chunks.isEmpty else { return }
                    for c in chunks { s.write(c) }
                    s.shutdown { _ in s.close() }
                }
                s.startReading()
            }
            server.listener = l
            server.port = l.localAddress.port
        }
        let req = UPnP.getRequest(.init(host: [127, 0, 0, 1], port: server.port, path: "/rootDesc.xml"))
        let result: Result<UPnP.HTTPResponse, UPnP.Error> = try await loop.submitCallback { loop, complete in
            UPnPExchange.run(on: loop, to: .loopback(port: server.port), request: req, timeout: timeout) { complete(.success($0)) }
        }
        try await loop.submit { _ in
            server.listener?.close()
            for s in server.held { s.close() }
        }
        return result
    }

    @Test func exchange_readsAChunkedDescriptionWrittenInPieces() async throws {
        let body = Array("<root><device/></root>".utf8)
        let head = Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        let r = try await exchange([head, Array("a\r\n".utf8) + body[..<10], Array("\r\nc\r\n".utf8) + body[10...] + Array("\r\n0\r\n\r\n".utf8)])
        #expect(r == .success(.init(status: 200, body: body)))
    }

    @Test func exchange_refusesAResponseOver64KiB() async throws {
        let r = try await exchange([Array("HTTP/1.1 200 OK\r\n\r\n".utf8), [UInt8](repeating: 65, count: 70_000)])
        guard case .failure(let e) = r else { Issue.record("accepted \(r)"); return }
        #expect(e.reason == "too_large")
    }

    @Test func exchange_givesUp_whenTheServerNeverAnswers() async throws {
        let loop = EventLoop(name: "portmap-test")
        let start = ContinuousClock.now
        let r = try await exchange([], timeout: .milliseconds(300), on: loop)
        let took = ContinuousClock.now - start
        await loop.shutdownGracefully()
        guard case .failure(let e) = r else { Issue.record("accepted \(r)"); return }
        #expect(e.reason == "http")
        // Generous: the bound proves it gives up instead of hanging, not how fast a loaded
        // machine is (16 s was seen with a soak and the whole suite on 2 cores).
        #expect(took < .seconds(30), "gave up after \(took)")
    }
}
