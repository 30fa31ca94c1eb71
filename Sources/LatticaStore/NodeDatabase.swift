/// The daemon's database (`<data-dir>/node.sqlite3`): schema and migrations.
///
/// Each entry of `migrations` moves the schema one version up; a released migration is never
/// edited, only followed by a new one. Docs/OPERATIONS.md lists the tables.
public enum NodeDatabase {
    public static let migrations: [String] = [
        // v1: node metadata and the peer store.
        """
        CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value BLOB NOT NULL
        ) STRICT;
        CREATE TABLE peers (
            peer_id    TEXT PRIMARY KEY,
            addrs      BLOB NOT NULL,            -- binary multiaddrs, each with a 2-byte big-endian length
            protocols  TEXT NOT NULL DEFAULT '', -- newline-separated protocol ids
            agent      TEXT NOT NULL DEFAULT '',
            rtt_us     INTEGER,
            last_seen  INTEGER NOT NULL,         -- unix seconds
            failures   INTEGER NOT NULL DEFAULT 0
        ) STRICT;
        CREATE INDEX peers_last_seen ON peers(last_seen);
        """,
        // v2: the DHT record store (expiry in Unix seconds, so it survives restarts).
        """
        CREATE TABLE dht_records (
            key        BLOB PRIMARY KEY,
            value      BLOB NOT NULL,
            publisher  BLOB NOT NULL,
            stored_by  BLOB NOT NULL,           -- peer id multihash of the peer that sent it
            expires    REAL NOT NULL,           -- unix seconds
            is_local   INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE dht_providers (
            key        BLOB NOT NULL,
            provider   BLOB NOT NULL,           -- peer id multihash
            addrs      BLOB NOT NULL,           -- binary multiaddrs, each with a 2-byte length
            expires    REAL NOT NULL,
            is_local   INTEGER NOT NULL,
            PRIMARY KEY (key, provider)
        ) STRICT;
        """,
        // v3: the CRDT store (Docs/CRDT.md): every applied signed batch as received, and the
        // materialised entry of each path; written in one transaction per batch.
        """
        CREATE TABLE crdt_batches (
            author     BLOB NOT NULL,           -- peer id multihash
            first_seq  INTEGER NOT NULL,
            last_seq   INTEGER NOT NULL,
            body       BLOB NOT NULL,           -- the signed batch, byte for byte (Docs/CRDT.md)
            PRIMARY KEY (author, first_seq)
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE crdt_entries (
            path       TEXT PRIMARY KEY,
            encoded    BLOB NOT NULL            -- State.encodedEntry(path)
        ) STRICT, WITHOUT ROWID;
        """,
    ]

    /// Opens the node database at `path`, migrating it to the current schema.
    public static func open(path: String) throws(StoreError) -> Database {
        try Database(path: path, migrations: migrations)
    }
}

extension Database {
    /// A value from the `meta` table.
    public func meta(_ key: String) throws(StoreError) -> [UInt8]? {
        try query("SELECT value FROM meta WHERE key = ?", [.text(key)]).first?.blob(0)
    }

    /// Sets a value in the `meta` table.
    public func setMeta(_ key: String, _ value: [UInt8]) throws(StoreError) {
        try query("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                  [.text(key), .blob(value)])
    }
}
