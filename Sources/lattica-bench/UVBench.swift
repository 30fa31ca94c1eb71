import ArgumentParser
import Foundation
import LatticaCore
import LatticaUV
import Synchronization

/// `lattica-bench uv`: loopback TCP throughput and UDP round-trip through the libuv shell.
/// Output lines are `name value unit` (Scripts/bench/uv.sh parses them); the C baseline
/// Scripts/bench/uv_baseline.c prints the same names.
struct UVBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "uv", abstract: "libuv shell: TCP throughput, UDP round trip.")

    @Option(help: "Bytes sent through one loopback TCP connection.")
    var tcpBytes: Int = 1 << 30
    @Option(help: "UDP echo round trips (median reported).")
    var udpCount: Int = 20_000
    @Option(help: "Size of each write / datagram payload.")
    var chunk: Int = 256 << 10
    @Flag(help: "Also measure the async API (TCPConnection, UDPEndpoint).")
    var async = false

    func run() async throws {
        let loop = EventLoop(name: "bench")
        let tcp = try await tcpCallback(loop)
        print(String(format: "tcp_callback_gbps %.3f GB/s", tcp))
        let udp = try await udpCallback(loop)
        print(String(format: "udp_callback_rtt_us %.2f us", udp))
        if async {
            print(String(format: "tcp_async_gbps %.3f GB/s", try await tcpAsync(loop)))
            print(String(format: "udp_async_rtt_us %.2f us", try await udpAsync(loop)))
        }
        await loop.shutdownGracefully()
    }

    /// Client and server on one loop: the client pumps `chunk`-sized writes while the socket is
    /// writable; the server counts and discards. Returns GB/s (1e9 bytes per second).
    func tcpCallback(_ loop: EventLoop) async throws -> Double {
        let total = tcpBytes, chunkSize = chunk
        let done = Completion<Double>()
        try await loop.submit { loop in
            let payload = [UInt8](repeating: 0x5A, count: chunkSize)
            var received = 0
            var start = Instant.zero
            var listener: TCPListener?
            listener = try TCPListener.listen(on: loop, address: .loopback()) { r in
                guard case .success(let s) = r else { return }
                listener?.close()
                s.onData = { bytes in
                    received += bytes.count
                    if received >= total {
                        done.complete(Double(total) / (loop.now - start).secondsDouble / 1e9)
                        s.close()
                    }
                }
                s.startReading()
            }
            TCPSocket.connect(on: loop, to: listener!.localAddress) { r in
                guard case .success(let c) = r else { fatalError("connect failed") }
                var sent = 0
                func pump() {
                    while c.isWritable && sent < total {
                        c.write(payload) { if let e = $0 { fatalError("\(e)") } }
                        sent += payload.count
                    }
                    if sent >= total && c.onWritabilityChanged != nil {
                        c.onWritabilityChanged = nil
                        c.shutdown { _ in c.close() }
                    }
                }
                c.onWritabilityChanged = { if $0 { pump() } }
                start = loop.now
                pump()
            }
        }
        return await done.value
    }

    /// Client and server on one loop; each round trip sends the next datagram from the client's
    /// receive callback. Returns the median round trip in microseconds.
    func udpCallback(_ loop: EventLoop) async throws -> Double {
        let count = udpCount
        let done = Completion<Double>()
        try await loop.submit { loop in
            let server = try UDPSocket.bind(on: loop, address: .loopback())
            server.onDatagram = { bytes, from in server.send(bytes, to: from) }
            server.startReceiving()
            let client = try UDPSocket.bind(on: loop, address: .loopback())
            let payload = [UInt8](repeating: 1, count: 64)
            var samples: [Int64] = []
            samples.reserveCapacity(count)
            var sentAt = loop.now
            client.onDatagram = { _, _ in
                samples.append((loop.now - sentAt).nanosecondsClamped)
                if samples.count == count {
                    done.complete(median(samples) / 1e3)
                    client.close(); server.close()
                    return
                }
                sentAt = loop.now
                client.send(payload, to: server.localAddress)
            }
            client.startReceiving()
            client.send(payload, to: server.localAddress)
        }
        return await done.value
    }

    func tcpAsync(_ loop: EventLoop) async throws -> Double {
        let server = try await TCPServer.listen(on: loop, address: .loopback())
        let total = tcpBytes
        let client = try await TCPConnection.connect(to: server.localAddress, on: loop)
        let peer = try await server.accept()!
        server.close()
        let payload = [UInt8](repeating: 0x5A, count: chunk)
        let start = loop.now
        let writer = Task {
            var sent = 0
            while sent < total { try await client.write(payload); sent += payload.count }
            try await client.shutdownWrite()
        }
        var received = 0
        while received < total, let c = try await peer.read() { received += c.count }
        let elapsed = loop.now - start
        try await writer.value
        client.close(); peer.close()
        return Double(received) / elapsed.secondsDouble / 1e9
    }

    func udpAsync(_ loop: EventLoop) async throws -> Double {
        let server = try await loop.submit { loop in
            let s = try UDPSocket.bind(on: loop, address: .loopback())
            s.onDatagram = { bytes, from in s.send(bytes, to: from) }
            s.startReceiving()
            return s
        }
        let client = try await UDPEndpoint.bind(on: loop, address: .loopback())
        let payload = [UInt8](repeating: 1, count: 64)
        var samples: [Int64] = []
        for _ in 0..<udpCount {
            let t0 = loop.now
            try await client.send(payload, to: server.localAddress)
            _ = try await client.receive()
            samples.append((loop.now - t0).nanosecondsClamped)
        }
        client.close()
        loop.execute { server.close() }
        return median(samples) / 1e3
    }
}

func median(_ xs: [Int64]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? Double(s[s.count / 2]) : Double(s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// A value produced once on the loop thread and awaited by the benchmark task.
final class Completion<T: Sendable>: Sendable {
    private let state = Mutex<(T?, CheckedContinuation<T, Never>?)>((nil, nil))
    func complete(_ v: T) {
        let w = state.withLock { s -> CheckedContinuation<T, Never>? in
            guard s.0 == nil else { return nil }
            s.0 = v
            let w = s.1
            s.1 = nil
            return w
        }
        w?.resume(returning: v)
    }
    var value: T {
        get async {
            await withCheckedContinuation { cont in
                let ready = state.withLock { s -> T? in
                    if let v = s.0 { return v }
                    s.1 = cont
                    return nil
                }
                if let ready { cont.resume(returning: ready) }
            }
        }
    }
}
