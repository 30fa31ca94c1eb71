import Foundation
import LatticaCore
import Synchronization
import Testing
@testable import LatticaUV

@Suite struct TCPTests {
    @Test func listenOnPortZero_reportsTheRealPort_andASecondBindFailsWithAddressInUse() async throws {
        try await withLoop { loop in
            let server = try await TCPServer.listen(on: loop, address: .loopback())
            #expect(server.localAddress.port != 0)
            #expect(server.localAddress.host == "127.0.0.1")
            await #expect(throws: UVError(kind: .addressInUse, operation: "listen \(server.localAddress)")) {
                _ = try await TCPServer.listen(on: loop, address: server.localAddress)
            }
            server.close()
        }
    }

    @Test func asyncEcho_overLoopback_returnsEveryByteInOrder() async throws {
        try await withLoop { loop in
            let server = try await TCPServer.listen(on: loop, address: .loopback())
            let echo = Task {
                let c = try #require(try await server.accept())
                for try await chunk in c.chunks { try await c.write(chunk) }
                try await c.shutdownWrite()
                c.close()
            }
            let client = try await TCPConnection.connect(to: server.localAddress, on: loop)
            #expect(client.remoteAddress == server.localAddress)
            let payload = randomBytes(3 << 20, seed: 1)
            async let sent: Void = {
                var i = 0
                while i < payload.count {
                    let n = min(100_000, payload.count - i)
                    try await client.write(Array(payload[i..<(i + n)]))
                    i += n
                }
                try await client.shutdownWrite()
            }()
            let back = try await readExactly(client, payload.count + 1)  // +1: also wait for EOF
            try await sent
            try await echo.value
            #expect(back == payload)
            client.close()
            server.close()
        }
    }

    @Test func callbackEcho_overLoopback_returnsEveryByte() async throws {
        try await withLoop { loop in
            let payload = randomBytes(1 << 20, seed: 2)
            let result = Signal<[UInt8]>()
            try await loop.submit { loop in
                let listener = try TCPListener.listen(on: loop, address: .loopback()) { accepted in
                    guard case .success(let s) = accepted else { return }
                    s.onData = { bytes in s.write(bytes) }
                    s.onEnd = { _ in s.shutdown { _ in s.close() } }
                    s.startReading()
                }
                TCPSocket.connect(on: loop, to: listener.localAddress) { connected in
                    guard case .success(let c) = connected else { result.fire([]); return }
                    var received: [UInt8] = []
                    c.onData = { received.append(contentsOf: $0) }
                    c.onEnd = { _ in result.fire(received); c.close(); listener.close() }
                    c.startReading()
                    c.write(payload) { error in if error == nil { c.shutdown() } }
                }
            }
            #expect(await result.wait() == payload)
        }
    }

    @Test func halfClose_peerSeesEOF_andCanStillReply() async throws {
        try await withLoop { loop in
            let server = try await TCPServer.listen(on: loop, address: .loopback())
            let client = try await TCPConnection.connect(to: server.localAddress, on: loop)
            let peer = try #require(try await server.accept())
            try await client.write(Array("question".utf8))
            try await client.shutdownWrite()
            #expect(try await readExactly(peer, 100) == Array("question".utf8))  // ends at EOF
            try await peer.write(Array("answer".utf8))
            peer.close()
            #expect(try await readExactly(client, 100) == Array("answer".utf8))
            client.close()
            server.close()
        }
    }

    @Test func connectToAClosedPort_failsWithConnectionRefused() async throws {
        try await withLoop { loop in
            let server = try await TCPServer.listen(on: loop, address: .loopback())
            let address = server.localAddress
            server.close()
            try await loop.sleep(for: .zero)  // the close has run
            do {
                _ = try await TCPConnection.connect(to: address, on: loop, timeout: .seconds(5))
                Issue.record("connect to a closed port succeeded")
            } catch let error as UVError {
                #expect(error.kind == .connectionRefused)
                #expect(error.description.contains("ECONNREFUSED"))
                #expect(error.description.contains(address.description))
            }
            try await loop.sleep(for: .zero)  // the failed socket's close callback has run
            #expect(loop.openHandleCount == 0)
        }
    }

    /// Only in an isolated network namespace (Scripts/test.sh runs the suite in one): there the
    /// address has no route, so nothing can leave the machine.
    @Test(.enabled(if: isolatedNetworkNamespace))
    func connectWithTimeout_toABlackholedAddress_failsWithinTheTimeout() async throws {
        try await withLoop { loop in
            // TEST-NET-1 (RFC 5737): never answers; without a route the kernel fails at once.
            let target = try SocketAddress(host: "192.0.2.1", port: 9)
            // Start and end are read on the loop thread, in the connect's own callback: on a loaded
            // 2-core machine the awaiting test's continuation can wait behind other tests' jobs
            // on the cooperative pool for tens of seconds, which says nothing about the connect.
            let (failure, elapsed): (UVError?, Duration) = try await loop.submitCallback { loop, complete in
                let start = loop.now
                TCPSocket.connect(on: loop, to: target, timeout: .milliseconds(100)) { r in
                    var failure: UVError?
                    switch r {
                    case .success(let s): s.close()
                    case .failure(let e): failure = e
                    }
                    complete(.success((failure, loop.now - start)))
                }
            }
            switch failure {
            case nil: Issue.record("connect to TEST-NET succeeded")
            case let error?:
                if error.kind == .timedOut { #expect(elapsed >= .milliseconds(100)) }
                // Generous: the bound proves it does not hang, not how fast a loaded machine is.
                #expect(elapsed < .seconds(30))
            }
            try await loop.sleep(for: .zero)  // the failed socket's close callback has run
            #expect(loop.openHandleCount == 0)
        }
    }

    @Test func backPressure_stalledReader_boundsTheWriteQueue_andReportsNotWritable() async throws {
        try await withLoop { loop in
            let settings = {
                var s = TCPSettings()
                s.highWatermark = 256 << 10
                s.lowWatermark = 64 << 10
                s.maxQueuedBytes = 1 << 20
                return s
            }()
            let chunk = randomBytes(64 << 10, seed: 3)
            let stalled = Signal<(maxQueued: Int, writable: Bool, overflow: UVError?)>()
            let drained = Signal<Int>()
            try await loop.submit { loop in
                var peer: TCPSocket?
                let listener = try TCPListener.listen(on: loop, address: .loopback(), settings: settings) { r in
                    if case .success(let s) = r { peer = s }  // accepted, but never reads (yet)
                }
                TCPSocket.connect(on: loop, to: listener.localAddress, settings: settings) { r in
                    guard case .success(let c) = r else { return }
                    var maxQueued = 0
                    func pump() {
                        while c.isWritable {
                            c.write(chunk)
                            maxQueued = max(maxQueued, c.queuedBytes)
                        }
                    }
                    c.onWritabilityChanged = { writable in
                        if writable {
                            drained.fire(c.queuedBytes)
                            c.close(); peer?.close(); listener.close()
                        }
                    }
                    pump()  // stops only because the socket said "not writable"
                    var overflow: UVError?
                    c.write([UInt8](repeating: 0, count: settings.maxQueuedBytes)) { overflow = $0 }
                    stalled.fire((maxQueued, c.isWritable, overflow))
                    // Now the reader wakes up and drains; writability must come back.
                    peer?.onData = { _ in }
                    peer?.startReading()
                }
            }
            let s = await stalled.wait()
            #expect(!s.writable)
            #expect(s.maxQueued >= settings.highWatermark)
            #expect(s.maxQueued < settings.highWatermark + chunk.count)
            #expect(s.overflow?.kind == .writeQueueFull)
            #expect(await drained.wait() <= settings.lowWatermark)
        }
    }

    @Test func asyncBackPressure_slowReader_keepsBothBuffersBounded() async throws {
        try await withLoop { loop in
            let settings = {
                var s = TCPSettings()
                s.highWatermark = 128 << 10
                s.lowWatermark = 32 << 10
                s.maxBufferedReadBytes = 128 << 10
                return s
            }()
            let server = try await TCPServer.listen(on: loop, address: .loopback(), settings: settings)
            let client = try await TCPConnection.connect(to: server.localAddress, on: loop, settings: settings)
            let peer = try #require(try await server.accept())
            let total = 16 << 20
            let maxQueued = Mutex(0)
            let writer = Task {
                let chunk = [UInt8](repeating: 7, count: 32 << 10)
                for _ in 0..<(total / chunk.count) {
                    try await client.write(chunk)
                    let q = try await loop.submit { _ in client.socket.queuedBytes }
                    maxQueued.withLock { $0 = max($0, q) }
                }
                try await client.shutdownWrite()
            }
            var received = 0, maxBuffered = 0, reads = 0
            while let chunk = try await peer.read() {
                received += chunk.count
                maxBuffered = max(maxBuffered, peer.bufferedBytes)
                reads += 1
                if reads % 16 == 0 { await Task.yield() }  // a slow consumer
            }
            try await writer.value
            #expect(received == total)
            #expect(maxBuffered <= settings.maxBufferedReadBytes + 65_536)
            #expect(maxQueued.withLock { $0 } < settings.highWatermark + (32 << 10))
            client.close(); peer.close(); server.close()
        }
    }
}

/// True when this process's network namespace has only the loopback interface.
let isolatedNetworkNamespace: Bool = {
    let dev = (try? String(contentsOfFile: "/proc/net/dev", encoding: .utf8)) ?? ""
    let ifaces = dev.split(separator: "\n").dropFirst(2).compactMap { $0.split(separator: ":").first?.trimmingCharacters(in: .whitespaces) }
    return ifaces == ["lo"]
}()
