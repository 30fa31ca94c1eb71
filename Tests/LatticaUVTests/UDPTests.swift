import Testing
@testable import LatticaUV

@Suite struct UDPTests {
    @Test func asyncEcho_returnsEveryDatagram_toItsSender() async throws {
        try await withLoop { loop in
            let server = try await UDPEndpoint.bind(on: loop, address: .loopback())
            let client = try await UDPEndpoint.bind(on: loop, address: .loopback())
            #expect(server.localAddress.port != 0)
            let echo = Task {
                while let d = try await server.receive() { try await server.send(d.bytes, to: d.from) }
            }
            for i in 0..<200 {
                let payload = randomBytes(1 + i * 7, seed: UInt64(i))
                try await client.send(payload, to: server.localAddress)
                let back = try #require(try await client.receive())
                #expect(back.bytes == payload)
                #expect(back.from == server.localAddress)
            }
            server.close()
            try await echo.value
            client.close()
        }
    }

    @Test func callbackEcho_deliversDatagramsWithTheSenderAddress() async throws {
        try await withLoop { loop in
            let done = Signal<[[UInt8]]>()
            let count = 100
            try await loop.submit { loop in
                let server = try UDPSocket.bind(on: loop, address: .loopback())
                server.onDatagram = { bytes, from in server.send(bytes, to: from) }
                server.startReceiving()
                let client = try UDPSocket.bind(on: loop, address: .loopback())
                var got: [[UInt8]] = []
                client.onDatagram = { bytes, from in
                    #expect(from == server.localAddress)
                    got.append(Array(bytes))
                    if got.count == count { done.fire(got); client.close(); server.close() }
                    else { client.send([UInt8(got.count)], to: server.localAddress) }
                }
                client.startReceiving()
                client.send([0], to: server.localAddress)
            }
            #expect(await done.wait() == (0..<count).map { [UInt8($0)] })
        }
    }

    @Test func receiveQueue_isBounded_andCountsDrops() async throws {
        try await withLoop { loop in
            let server = try await UDPEndpoint.bind(on: loop, address: .loopback(), maxQueuedDatagrams: 8)
            let client = try await UDPEndpoint.bind(on: loop, address: .loopback())
            for i in 0..<64 { try await client.send([UInt8(i)], to: server.localAddress) }
            // A marker datagram from a second sender orders after the flood in the receive path.
            try await client.send([255], to: server.localAddress)
            var seen = 0
            while server.droppedDatagrams + seen < 65, let _ = try await server.receive() { seen += 1 }
            #expect(seen >= 8)
            #expect(server.droppedDatagrams + seen == 65)
            #expect(server.droppedDatagrams > 0)
            server.close(); client.close()
        }
    }
}
