import LatticaCore
import LatticaCRDT
import LatticaCrypto
import LatticaStore
import Testing
@testable import LatticaNode

/// The CRDT store's SQLite rows under compaction: a compacted batch takes the place of the rows
/// it covers in the transaction that writes it, and a restart from the rows restores the same
/// store (every signature verified again).
@Suite struct CRDTPersistenceTests {
    @Test func compactedBatches_replaceTheirRowsInOneTransaction_andARestartRestoresTheSameStore() throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let wall = CRDT.WallTime(milliseconds: 1_700_000_000_000)
        let signer = CRDT.Signer(key: try Ed25519PrivateKey(seed: [UInt8](repeating: 3, count: 32)))
        var node = CRDT.Instance(signer: signer, seed: 1)
        let p = CRDTPersistence(db: try NodeDatabase.open(path: tmp.path + "/db.sqlite3"))
        func commit(_ ds: [CRDT.Directive]) throws {
            try p.save(ds.compactMap { if case .persist(let x) = $0 { x } else { nil } })
        }
        for k in 0..<200 { try commit(try node.onLocalWrite([.set("kv/p/\(k % 4)", .int(Int64(k)))], now: .zero, wall: wall)) }
        try commit(try node.onLocalWrite([.add("kv/s", .string("x"))], now: .zero, wall: wall))
        #expect(try p.load(limits: .init()).count == 201)
        try commit(node.compactNow(now: .zero))
        try commit(try node.onLocalWrite([.set("kv/p/0", .int(-1))], now: .zero, wall: wall))
        let rows = try p.load(limits: .init())
        #expect(rows.map(\.seqs) == [1...201, 202...202])
        #expect(rows[0].isCompacted && rows[0].deltas.count == 9)  // 4 newest + 4 first + the set add
        let restored = CRDT.Instance(signer: signer, seed: 2, restoring: rows)
        #expect(restored.metrics.restoredBatches == 2 && restored.metrics.rejected.isEmpty)
        #expect(restored.state.stateHash == node.state.stateHash && restored.nextSeq == 203)
        #expect(restored.logBytes == node.logBytes)
    }
}
