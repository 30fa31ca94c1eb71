/// The trainer API of a `dadao` run (Docs/TRAINER-API.md, "DADAO runs"): the daemon keeps the
/// node's DADAO state and its gossip clock; the trainer keeps the data, runs the gradient clock
/// and computes every gradient (never the daemon's loop thread). Vectors go through the shared-
/// memory file as `count` float64, little endian (8 × count bytes), never through JSON.
extension Methods {
    /// `trainer.dadao_start`: `shm` holds x0; the daemon waits (up to 30 s) for the run's planned
    /// members to connect, creates the DADAO state with the trainer's L and μ, starts its gossip
    /// clock, and answers with X at the trainer's first gradient event (`next_ms` from now) in `shm`.
    public enum TrainerDADAOStart: ControlMethod {
        public static let name = "trainer.dadao_start"
        public typealias Result = DADAOStepResult
        public struct Params: ControlParams, Equatable {
            public var run: String
            public var shm: String
            public var count: Int
            /// Smoothness and strong convexity of every local loss (the same on every node).
            public var l: Double
            public var mu: Double
            /// Milliseconds until the trainer's first gradient event.
            public var nextMs: Double
            public enum CodingKeys: String, CodingKey, CaseIterable { case run, shm, count, l, mu, nextMs = "next_ms" }
            public static let ranges = ["count": 1...DADAOLimits.maxDimension]
            public static let maxLengths = ["run": 128, "shm": 256]
            public init(run: String, shm: String, count: Int, l: Double, mu: Double, nextMs: Double) {
                self.run = run; self.shm = shm; self.count = count; self.l = l; self.mu = mu; self.nextMs = nextMs
            }
            public func validate() throws(ControlErrorBody) {
                try require("run", run); try check("count", count)
                try DADAOLimits.checkShm(shm)
                guard l.isFinite, mu.isFinite, mu > 0, l >= mu, l <= 1e12 else { throw .badRequest("'l' and 'mu' must be finite with 0 < mu <= l <= 1e12") }
                try DADAOLimits.checkNext(nextMs)
            }
        }
    }

    /// `trainer.dadao_gradient`: `shm` holds ∇f_i at the X the last call returned; the daemon
    /// applies the gradient event now and answers with X at the next gradient event (`next_ms`
    /// from now) in `shm`.
    public enum TrainerDADAOGradient: ControlMethod {
        public static let name = "trainer.dadao_gradient"
        public typealias Result = DADAOStepResult
        public struct Params: ControlParams, Equatable {
            public var run: String
            public var shm: String
            public var count: Int
            public var nextMs: Double
            /// The trainer's loss estimate (shown by `train.status`).
            public var loss: Double?
            public enum CodingKeys: String, CodingKey, CaseIterable { case run, shm, count, nextMs = "next_ms", loss }
            public static let ranges = ["count": 1...DADAOLimits.maxDimension]
            public static let maxLengths = ["run": 128, "shm": 256]
            public init(run: String, shm: String, count: Int, nextMs: Double, loss: Double? = nil) {
                self.run = run; self.shm = shm; self.count = count; self.nextMs = nextMs; self.loss = loss
            }
            public func validate() throws(ControlErrorBody) {
                try require("run", run); try check("count", count)
                try DADAOLimits.checkShm(shm)
                try DADAOLimits.checkNext(nextMs)
                if let loss, !loss.isFinite { throw .badRequest("'loss' must be a finite number") }
            }
        }
    }
}

public enum DADAOLimits {
    /// The largest DADAO model (`DADAO.Wire.maxDimension`).
    public static let maxDimension = 1 << 18

    static func checkShm(_ shm: String) throws(ControlErrorBody) {
        guard TrainerAPI.isSharedMemoryPath(shm) else {
            throw .badRequest("'shm' must be a file under /dev/shm/ or a memfd of the trainer as /proc/<pid>/fd/<n>")
        }
    }

    static func checkNext(_ ms: Double) throws(ControlErrorBody) {
        guard ms.isFinite, ms >= 0, ms <= 3_600_000 else { throw .badRequest("'next_ms' must be in 0...3600000") }
    }
}

public struct DADAOStepResult: Codable, Sendable, Equatable {
    /// DADAO time (units since this node's start) of the event just applied.
    public var time: Double
    /// Gradient events applied, exchanges completed (as initiator and as answerer), exchanges
    /// that failed (peer down or busy, timed out), payloads refused (wrong dimension, NaN/Inf,
    /// malformed), all since the start.
    public var gradients: Int
    public var gossips: Int
    public var failures: Int
    public var rejected: Int
    /// Mean round trip of the exchanges this node started, in ms.
    public var exchangeMs: Double?
    /// `trainer.dadao_start` after a restart: the DADAO time of the saved state the daemon
    /// resumed (`runs/<run>/dadao.state`); `time` is then the run clock, where the trainer's
    /// gradient clock continues. Absent at a fresh start.
    public var resumedFrom: Double?
    enum CodingKeys: String, CodingKey { case time, gradients, gossips, failures, rejected, exchangeMs = "exchange_ms", resumedFrom = "resumed_from" }
    public init(time: Double, gradients: Int, gossips: Int, failures: Int, rejected: Int) {
        self.time = time; self.gradients = gradients; self.gossips = gossips; self.failures = failures; self.rejected = rejected
    }
}
