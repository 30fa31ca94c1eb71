import Foundation
import Testing
@testable import LatticaStore

@Suite struct DatabaseTests {
    let dir: String

    init() throws {
        dir = NSTemporaryDirectory() + "lattica-store-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    @Test func open_createsDatabaseInWALMode_atCurrentSchemaVersion() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = try NodeDatabase.open(path: dir + "/node.sqlite3")
        #expect(try db.journalMode == "wal")
        #expect(try db.schemaVersion == NodeDatabase.migrations.count)
    }

    @Test func migrations_applyOnlyTheMissingSteps_whenReopened() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/m.sqlite3"
        do {
            let db = try Database(path: path, migrations: ["CREATE TABLE a(x INTEGER)"])
            try db.query("INSERT INTO a VALUES (1)")
            #expect(try db.schemaVersion == 1)
        }
        let db = try Database(path: path, migrations: ["CREATE TABLE a(x INTEGER)", "ALTER TABLE a ADD COLUMN y TEXT"])
        #expect(try db.schemaVersion == 2)
        #expect(try db.query("SELECT x, y FROM a").first?.int(0) == 1)
    }

    @Test func open_refusesADatabaseFromANewerVersion_withoutTouchingIt() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/n.sqlite3"
        _ = try Database(path: path, migrations: ["CREATE TABLE a(x)", "CREATE TABLE b(x)"])
        #expect(throws: StoreError.self) { _ = try Database(path: path, migrations: ["CREATE TABLE a(x)"]) }
        #expect(try Database(path: path, migrations: ["CREATE TABLE a(x)", "CREATE TABLE b(x)"]).schemaVersion == 2)
    }

    @Test func failedMigration_rollsBack_andLeavesTheVersion() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/f.sqlite3"
        #expect(throws: StoreError.self) {
            _ = try Database(path: path, migrations: ["CREATE TABLE a(x)", "CREATE TABLE a(x)"])
        }
        let db = try Database(path: path, migrations: ["CREATE TABLE a(x)"])
        #expect(try db.schemaVersion == 1)
    }

    @Test func meta_roundTripsBlobsAndOverwrites() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = try NodeDatabase.open(path: dir + "/node.sqlite3")
        #expect(try db.meta("k") == nil)
        try db.setMeta("k", [0, 1, 2, 255])
        #expect(try db.meta("k") == [0, 1, 2, 255])
        try db.setMeta("k", [])
        #expect(try db.meta("k") == [])
    }

    @Test func transaction_rollsBack_whenBodyThrows() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = try NodeDatabase.open(path: dir + "/node.sqlite3")
        #expect(throws: StoreError.self) {
            try db.transaction { () throws(StoreError) in
                try db.setMeta("a", [1])
                try db.execute("SELECT * FROM no_such_table")
            }
        }
        #expect(try db.meta("a") == nil)
    }

    @Test func open_failsWithAClearError_whenDirectoryIsMissing() {
        let e = #expect(throws: StoreError.self) { _ = try Database(path: "/nonexistent-\(UUID())/x.sqlite3") }
        #expect(e?.description.contains("open /nonexistent-") == true)
    }
}

@Suite struct PeerStoreTests {
    @Test func peers_roundTrip_andTheOldestAreEvicted_beyondCapacity() throws {
        let dir = NSTemporaryDirectory() + "lattica-peers-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = PeerStore(db: try NodeDatabase.open(path: dir + "/node.sqlite3"), capacity: 3)
        let p = PeerRecord(peerId: "A", addrs: [[4, 127, 0, 0, 1], []], protocols: ["/ipfs/ping/1.0.0", "/ipfs/id/1.0.0"],
                           agent: "x", rttMicros: 250, lastSeen: 10)
        try store.upsert(p)
        #expect(try store.get("A") == p)
        for (i, id) in ["B", "C", "D"].enumerated() { try store.upsert(PeerRecord(peerId: id, addrs: [], lastSeen: Int64(20 + i))) }
        #expect(try store.get("A") == nil)
        #expect(try store.all().map(\.peerId) == ["D", "C", "B"])
        try store.recordFailure("B")
        #expect(try store.get("B")?.failures == 1)
    }

    @Test func unpack_toleratesDamagedBlobs() {
        #expect(PeerStore.unpack([0, 5, 1, 2]) == [])
        #expect(PeerStore.unpack([0, 1, 9, 0]) == [[9]])
        #expect(PeerStore.unpack(PeerStore.pack([[1, 2, 3], [4]])) == [[1, 2, 3], [4]])
    }
}
