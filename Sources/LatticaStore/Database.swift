import CSQLite
import Logging

/// Errors from SQLite, with the result code, SQLite's message and the statement or path involved.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public var code: Int32
    public var message: String
    public var context: String

    public var description: String { "database error \(code) (\(context)): \(message)" }
}

/// A SQLite database connection: WAL mode, foreign keys on, a busy timeout, schema migrations
/// tracked in `PRAGMA user_version`.
///
/// Not thread-safe: one owner (an actor or one thread) uses a `Database` at a time. SQLite is built
/// in serialized mode on Debian, so moving the owner between threads is safe.
public final class Database: @unchecked Sendable {
    public let path: String
    @usableFromInline let handle: OpaquePointer
    private var statements: [String: Statement] = [:]

    /// Opens (creating if missing) the database at `path` and applies `migrations` in order.
    /// `migrations[i]` takes the schema from version `i` to `i + 1`.
    public init(path: String, migrations: [String] = [], busyTimeoutMs: Int32 = 5_000) throws(StoreError) {
        self.path = path
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let msg = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(db)
            throw StoreError(code: rc, message: msg, context: "open \(path)")
        }
        handle = db
        sqlite3_busy_timeout(db, busyTimeoutMs)
        sqlite3_extended_result_codes(db, 1)
        try execute("PRAGMA journal_mode=WAL")
        try execute("PRAGMA synchronous=NORMAL")
        // Checkpoint the WAL every ~16 MB instead of ~4 MB: fewer fsyncs under a stream of commits
        // (the CRDT store), same durability (a process crash loses nothing committed in WAL mode).
        try execute("PRAGMA wal_autocheckpoint=4000")
        try execute("PRAGMA foreign_keys=ON")
        try migrate(migrations)
    }

    deinit {
        statements.removeAll()
        sqlite3_close_v2(handle)
    }

    /// The schema version (`PRAGMA user_version`).
    public var schemaVersion: Int {
        get throws(StoreError) { Int(try query("PRAGMA user_version").first?.int(0) ?? 0) }
    }

    /// The journal mode SQLite reports (`wal` once opened).
    public var journalMode: String {
        get throws(StoreError) { try query("PRAGMA journal_mode").first?.text(0) ?? "" }
    }

    private func migrate(_ migrations: [String]) throws(StoreError) {
        let current = try schemaVersion
        if current > migrations.count {
            throw StoreError(code: SQLITE_MISMATCH, message:
                "schema version \(current) is newer than this build knows (\(migrations.count)); upgrade latticad",
                context: path)
        }
        for v in current..<migrations.count {
            try transaction { () throws(StoreError) in
                try execute(migrations[v])
                try execute("PRAGMA user_version = \(v + 1)")
            }
        }
    }

    /// Runs one or more statements without results.
    public func execute(_ sql: String) throws(StoreError) {
        var err: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &err)
        if rc != SQLITE_OK {
            let msg = err.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(err)
            throw StoreError(code: rc, message: msg, context: String(sql.prefix(80)))
        }
    }

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT`, rolling back when it throws.
    public func transaction<T>(_ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Runs a statement with bound parameters; returns its rows.
    @discardableResult
    public func query(_ sql: String, _ params: [SQLValue] = []) throws(StoreError) -> [Row] {
        let stmt = try prepared(sql)
        defer { stmt.reset() }
        try stmt.bind(params, db: self)
        var rows: [Row] = []
        while true {
            let rc = sqlite3_step(stmt.pointer)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc, sql) }
            rows.append(stmt.row())
        }
        return rows
    }

    /// Number of rows changed by the last statement.
    public var changes: Int { Int(sqlite3_changes(handle)) }

    private func prepared(_ sql: String) throws(StoreError) -> Statement {
        if let s = statements[sql] { return s }
        var p: OpaquePointer?
        let rc = sqlite3_prepare_v2(handle, sql, -1, &p, nil)
        guard rc == SQLITE_OK, let p else { throw error(rc, sql) }
        let s = Statement(pointer: p)
        if statements.count > 256 { statements.removeAll() }
        statements[sql] = s
        return s
    }

    func error(_ rc: Int32, _ sql: String) -> StoreError {
        StoreError(code: rc, message: String(cString: sqlite3_errmsg(handle)), context: String(sql.prefix(80)))
    }
}

/// A value bound to or read from SQLite.
public enum SQLValue: Sendable, Hashable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case blob([UInt8])
}

/// One result row.
public struct Row: Sendable {
    public var values: [SQLValue]

    public func int(_ i: Int) -> Int64? {
        switch values[i] {
        case .int(let v): v
        case .double(let d): Int64(exactly: d.rounded())
        case .text(let t): Int64(t)
        default: nil
        }
    }

    public func double(_ i: Int) -> Double? {
        switch values[i] {
        case .double(let d): d
        case .int(let v): Double(v)
        default: nil
        }
    }

    public func text(_ i: Int) -> String? {
        switch values[i] {
        case .text(let t): t
        case .blob(let b): String(decoding: b, as: UTF8.self)
        case .int(let v): String(v)
        default: nil
        }
    }

    public func blob(_ i: Int) -> [UInt8]? {
        switch values[i] {
        case .blob(let b): b
        case .text(let t): Array(t.utf8)
        default: nil
        }
    }
}

final class Statement {
    let pointer: OpaquePointer
    init(pointer: OpaquePointer) { self.pointer = pointer }
    deinit { sqlite3_finalize(pointer) }

    func reset() {
        sqlite3_reset(pointer)
        sqlite3_clear_bindings(pointer)
    }

    func bind(_ params: [SQLValue], db: Database) throws(StoreError) {
        guard Int(sqlite3_bind_parameter_count(pointer)) == params.count else {
            throw StoreError(code: SQLITE_RANGE, message:
                "statement takes \(sqlite3_bind_parameter_count(pointer)) parameters, got \(params.count)",
                context: String(cString: sqlite3_sql(pointer)))
        }
        for (i, v) in params.enumerated() {
            let idx = Int32(i + 1)
            let rc: Int32
            switch v {
            case .null: rc = sqlite3_bind_null(pointer, idx)
            case .int(let x): rc = sqlite3_bind_int64(pointer, idx, x)
            case .double(let x): rc = sqlite3_bind_double(pointer, idx, x)
            case .text(let s): rc = sqlite3_bind_text(pointer, idx, s, -1, sqliteTransient)
            case .blob(let b):
                rc = b.withUnsafeBytes { sqlite3_bind_blob(pointer, idx, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32($0.count), sqliteTransient) }
            }
            if rc != SQLITE_OK { throw db.error(rc, String(cString: sqlite3_sql(pointer))) }
        }
    }

    func row() -> Row {
        let n = sqlite3_column_count(pointer)
        var values: [SQLValue] = []
        values.reserveCapacity(Int(n))
        for i in 0..<n {
            switch sqlite3_column_type(pointer, i) {
            case SQLITE_INTEGER: values.append(.int(sqlite3_column_int64(pointer, i)))
            case SQLITE_FLOAT: values.append(.double(sqlite3_column_double(pointer, i)))
            case SQLITE_TEXT: values.append(.text(String(cString: sqlite3_column_text(pointer, i))))
            case SQLITE_BLOB:
                let count = Int(sqlite3_column_bytes(pointer, i))
                if let p = sqlite3_column_blob(pointer, i), count > 0 {
                    values.append(.blob(Array(UnsafeRawBufferPointer(start: p, count: count))))
                } else {
                    values.append(.blob([]))
                }
            default: values.append(.null)
            }
        }
        return Row(values: values)
    }
}

/// SQLITE_TRANSIENT: SQLite copies the bound bytes before the call returns.
let sqliteTransient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
