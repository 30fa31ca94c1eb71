/// The control methods of the model service (`/lattica/model/1.0.0`, Docs/MODEL.md).
extension Methods {
    /// `model.ls`: the stored models, and downloads in progress.
    public enum ModelList: ControlMethod {
        public static let name = "model.ls"
        public typealias Params = NoParams
        public typealias Result = ModelListResult
    }

    /// `model.pull`: fetches a model by id from `peer`, or from providers found in the DHT.
    public enum ModelPull: ControlMethod {
        public static let name = "model.pull"
        public typealias Result = ModelPullResult
        public struct Params: ControlParams, Equatable {
            /// The model id: 64 hex digits.
            public var hash: String
            /// A peer id to pull from; absent: the DHT's providers of `/lattica/model/<hash>`.
            public var peer: String?
            public enum CodingKeys: String, CodingKey, CaseIterable { case hash, peer }
            public init(hash: String, peer: String? = nil) { self.hash = hash; self.peer = peer }
            public func validate() throws(ControlErrorBody) {
                try ModelHash.check(hash)
                if let peer { try require("peer", peer) }
            }
        }
    }

    /// `model.push`: imports a local file into the store; returns its id and announces it.
    public enum ModelPush: ControlMethod {
        public static let name = "model.push"
        public typealias Result = ModelPushResult
        public struct Params: ControlParams, Equatable {
            /// An absolute path readable by the daemon.
            public var path: String
            /// log2 of the chunk size, 12 (4 KiB) to 24 (16 MiB); default 20 (1 MiB).
            public var chunkShift: Int?
            public enum CodingKeys: String, CodingKey, CaseIterable { case path, chunkShift = "chunk_shift" }
            public static let ranges = ["chunk_shift": 12...24]
            public init(path: String, chunkShift: Int? = nil) { self.path = path; self.chunkShift = chunkShift }
            public func validate() throws(ControlErrorBody) {
                try require("path", path)
                guard path.hasPrefix("/") else { throw .badRequest("'path' must be absolute") }
                guard !path.utf8.contains(0) else { throw .badRequest("'path' contains a NUL byte") }
                try check("chunk_shift", chunkShift)
            }
        }
    }

    /// `model.export`: copies a stored model to a new file.
    public enum ModelExport: ControlMethod {
        public static let name = "model.export"
        public typealias Result = ModelExportResult
        public struct Params: ControlParams, Equatable {
            public var hash: String
            /// An absolute path that does not exist yet.
            public var path: String
            public enum CodingKeys: String, CodingKey, CaseIterable { case hash, path }
            public init(hash: String, path: String) { self.hash = hash; self.path = path }
            public func validate() throws(ControlErrorBody) {
                try ModelHash.check(hash)
                try require("path", path)
                guard path.hasPrefix("/") else { throw .badRequest("'path' must be absolute") }
                guard !path.utf8.contains(0) else { throw .badRequest("'path' contains a NUL byte") }
            }
        }
    }
}

public enum ModelHash {
    /// 64 hex digits.
    public static func check(_ hash: String) throws(ControlErrorBody) {
        let u = Array(hash.utf8)
        let hex = u.allSatisfy { (48...57).contains($0) || (97...102).contains($0) || (65...70).contains($0) }
        guard u.count == 64, hex else { throw .badRequest("'hash' must be 64 hex digits (a model id)") }
    }
}

public struct ModelListResult: Codable, Sendable, Equatable {
    public struct Model: Codable, Sendable, Equatable {
        public var hash: String
        public var size: UInt64
        public var chunks: Int
        public var chunkSize: Int
        enum CodingKeys: String, CodingKey { case hash, size, chunks, chunkSize = "chunk_size" }
        public init(hash: String, size: UInt64, chunks: Int, chunkSize: Int) {
            self.hash = hash; self.size = size; self.chunks = chunks; self.chunkSize = chunkSize
        }
    }
    public struct Partial: Codable, Sendable, Equatable {
        public var hash: String
        /// The model's size, when its manifest was fetched.
        public var size: UInt64?
        /// Bytes in the partial file (chunks are written at their offsets, so this is an upper bound).
        public var bytesOnDisk: UInt64
        public var active: Bool
        enum CodingKeys: String, CodingKey { case hash, size, bytesOnDisk = "bytes_on_disk", active }
        public init(hash: String, size: UInt64?, bytesOnDisk: UInt64, active: Bool) {
            self.hash = hash; self.size = size; self.bytesOnDisk = bytesOnDisk; self.active = active
        }
    }
    public var models: [Model]
    public var partial: [Partial]
    public init(models: [Model], partial: [Partial]) { self.models = models; self.partial = partial }
}

public struct ModelPullResult: Codable, Sendable, Equatable {
    public var hash: String
    public var size: UInt64
    public var chunks: Int
    /// Chunks fetched by this pull.
    public var chunksFetched: Int
    /// Chunks already on disk from an interrupted pull (verified again, not fetched).
    public var chunksResumed: Int
    public var bytesFetched: UInt64
    /// The peer the chunks came from (nil when the model was stored already).
    public var peer: String?
    public var alreadyStored: Bool
    public var ms: Double
    enum CodingKeys: String, CodingKey {
        case hash, size, chunks, chunksFetched = "chunks_fetched", chunksResumed = "chunks_resumed", bytesFetched = "bytes_fetched"
        case peer, alreadyStored = "already_stored", ms
    }
    public init(hash: String, size: UInt64, chunks: Int, chunksFetched: Int, chunksResumed: Int, bytesFetched: UInt64,
                peer: String?, alreadyStored: Bool, ms: Double) {
        self.hash = hash; self.size = size; self.chunks = chunks; self.chunksFetched = chunksFetched; self.chunksResumed = chunksResumed
        self.bytesFetched = bytesFetched; self.peer = peer; self.alreadyStored = alreadyStored; self.ms = ms
    }
}

public struct ModelPushResult: Codable, Sendable, Equatable {
    public var hash: String
    public var size: UInt64
    public var chunks: Int
    /// DHT peers told that this node provides the model (0: no DHT peers yet; it is announced again later).
    public var announced: Int
    public init(hash: String, size: UInt64, chunks: Int, announced: Int) {
        self.hash = hash; self.size = size; self.chunks = chunks; self.announced = announced
    }
}

public struct ModelExportResult: Codable, Sendable, Equatable {
    public var hash: String
    public var path: String
    public var size: UInt64
    public init(hash: String, path: String, size: UInt64) { self.hash = hash; self.path = path; self.size = size }
}
