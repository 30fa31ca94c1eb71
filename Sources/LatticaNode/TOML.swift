/// A small TOML reader for the daemon's configuration file.
///
/// Supports what `Config/latticad.toml` uses: comments, `[table]` and `[a.b]` headers, bare and quoted
/// keys, dotted keys, basic and literal strings (with escapes), integers (with `_`), floats, booleans
/// and arrays (also spanning lines). Not supported, and rejected with a clear error: inline tables,
/// arrays of tables, multi-line strings, dates. We write our own because TOMLKit, the one TOML
/// package in our mirror, depends on a package that is not available and compiles a C++ parser.
public enum TOML {
    public indirect enum Value: Equatable, Sendable {
        case string(String)
        case integer(Int64)
        case float(Double)
        case bool(Bool)
        case array([Value])
        case table([String: Value])

        public var typeName: String {
            switch self {
            case .string: "string"
            case .integer: "integer"
            case .float: "float"
            case .bool: "boolean"
            case .array: "array"
            case .table: "table"
            }
        }
    }

    public struct ParseError: Error, CustomStringConvertible, Equatable, Sendable {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    /// Parses a document into its root table.
    public static func parse(_ text: String) throws(ParseError) -> [String: Value] {
        var p = Parser(Array(text.unicodeScalars))
        return try p.document()
    }
}

private struct Parser {
    let s: [Unicode.Scalar]
    var i = 0
    var line = 1
    var root: [String: TOML.Value] = [:]
    var definedTables: Set<[String]> = []

    init(_ s: [Unicode.Scalar]) { self.s = s }

    func fail(_ m: String) -> TOML.ParseError { TOML.ParseError(line: line, message: m) }
    var atEnd: Bool { i >= s.count }
    var peek: Unicode.Scalar? { i < s.count ? s[i] : nil }

    mutating func skipSpaces() { while let c = peek, c == " " || c == "\t" { i += 1 } }

    mutating func skipComment() {
        if peek == "#" { while let c = peek, c != "\n" { i += 1 } }
    }

    /// Skips whitespace, newlines and comments (inside arrays).
    mutating func skipBlank() {
        while let c = peek {
            if c == " " || c == "\t" || c == "\r" { i += 1 }
            else if c == "\n" { i += 1; line += 1 }
            else if c == "#" { skipComment() }
            else { break }
        }
    }

    mutating func endOfLine() throws(TOML.ParseError) {
        skipSpaces()
        skipComment()
        if peek == "\r" { i += 1 }
        if atEnd { return }
        guard peek == "\n" else { throw fail("unexpected '\(peek!)' after value") }
        i += 1; line += 1
    }

    mutating func document() throws(TOML.ParseError) -> [String: TOML.Value] {
        var current: [String] = []
        while true {
            skipBlank()
            guard let c = peek else { break }
            if c == "[" {
                i += 1
                if peek == "[" { throw fail("arrays of tables ([[...]]) are not supported") }
                skipSpaces()
                let path = try keyPath()
                skipSpaces()
                guard peek == "]" else { throw fail("expected ']' to close table header") }
                i += 1
                guard definedTables.insert(path).inserted else { throw fail("table [\(path.joined(separator: "."))] defined twice") }
                try ensureTable(path)
                current = path
                try endOfLine()
            } else {
                let key = try keyPath()
                skipSpaces()
                guard peek == "=" else { throw fail("expected '=' after key '\(key.joined(separator: "."))'") }
                i += 1
                skipSpaces()
                let v = try value()
                try insert(current + key, v)
                try endOfLine()
            }
        }
        return root
    }

    mutating func keyPath() throws(TOML.ParseError) -> [String] {
        var parts: [String] = []
        while true {
            skipSpaces()
            parts.append(try key())
            skipSpaces()
            if peek == "." { i += 1 } else { break }
        }
        return parts
    }

    mutating func key() throws(TOML.ParseError) -> String {
        if peek == "\"" { return try basicString() }
        if peek == "'" { return try literalString() }
        var out = String.UnicodeScalarView()
        while let c = peek, c.properties.isAlphabetic && c.isASCII || ("0"..."9").contains(c) || c == "_" || c == "-" {
            out.append(c); i += 1
        }
        guard !out.isEmpty else { throw fail(peek.map { "unexpected '\($0)' where a key was expected" } ?? "expected a key") }
        return String(out)
    }

    mutating func value() throws(TOML.ParseError) -> TOML.Value {
        guard let c = peek else { throw fail("expected a value") }
        switch c {
        case "\"":
            if i + 2 < s.count, s[i + 1] == "\"", s[i + 2] == "\"" { throw fail("multi-line strings are not supported") }
            return .string(try basicString())
        case "'": return .string(try literalString())
        case "[": return try array()
        case "{": throw fail("inline tables are not supported; use a [table] header")
        case "t", "f":
            if match("true") { return .bool(true) }
            if match("false") { return .bool(false) }
            throw fail("invalid value (expected true or false)")
        default: return try number()
        }
    }

    mutating func match(_ word: String) -> Bool {
        let w = Array(word.unicodeScalars)
        guard i + w.count <= s.count, Array(s[i..<i + w.count]) == w else { return false }
        if i + w.count < s.count, s[i + w.count].properties.isAlphabetic { return false }
        i += w.count
        return true
    }

    mutating func number() throws(TOML.ParseError) -> TOML.Value {
        var text = ""
        while let c = peek, c.properties.isAlphabetic || ("0"..."9").contains(c) || "+-._".unicodeScalars.contains(c) {
            text.unicodeScalars.append(c); i += 1
        }
        guard !text.isEmpty else { throw fail("invalid value starting with '\(peek!)'") }
        let clean = text.replacingUnderscores()
        if let v = Int64(clean) { return .integer(v) }
        if clean.hasPrefix("0x"), let v = Int64(clean.dropFirst(2), radix: 16) { return .integer(v) }
        if clean.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let d = Double(clean), d.isFinite {
            return .float(d)
        }
        if clean == "inf" || clean == "+inf" { return .float(.infinity) }
        if clean == "-inf" { return .float(-.infinity) }
        throw fail("invalid value '\(text)' (strings need quotes)")
    }

    mutating func array() throws(TOML.ParseError) -> TOML.Value {
        i += 1
        var items: [TOML.Value] = []
        while true {
            skipBlank()
            if peek == "]" { i += 1; return .array(items) }
            items.append(try value())
            skipBlank()
            if peek == "," { i += 1; continue }
            if peek == "]" { i += 1; return .array(items) }
            throw fail("expected ',' or ']' in array")
        }
    }

    mutating func basicString() throws(TOML.ParseError) -> String {
        i += 1
        var out = String.UnicodeScalarView()
        while true {
            guard let c = peek, c != "\n" else { throw fail("unterminated string") }
            i += 1
            if c == "\"" { return String(out) }
            if c == "\\" {
                guard let e = peek else { throw fail("unterminated string") }
                i += 1
                switch e {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "r": out.append("\r")
                case "\\": out.append("\\")
                case "\"": out.append("\"")
                case "u", "U":
                    let n = e == "u" ? 4 : 8
                    guard i + n <= s.count, let v = UInt32(String(String.UnicodeScalarView(s[i..<i + n])), radix: 16),
                          let u = Unicode.Scalar(v) else { throw fail("invalid unicode escape") }
                    out.append(u); i += n
                default: throw fail("invalid escape '\\\(e)'")
                }
            } else {
                out.append(c)
            }
        }
    }

    mutating func literalString() throws(TOML.ParseError) -> String {
        i += 1
        var out = String.UnicodeScalarView()
        while true {
            guard let c = peek, c != "\n" else { throw fail("unterminated string") }
            i += 1
            if c == "'" { return String(out) }
            out.append(c)
        }
    }

    mutating func ensureTable(_ path: [String]) throws(TOML.ParseError) {
        try update(&root, path[...]) { (_ t: inout TOML.Value?) throws(TOML.ParseError) in
            if t == nil { t = .table([:]) }
        }
    }

    mutating func insert(_ path: [String], _ v: TOML.Value) throws(TOML.ParseError) {
        let name = path.joined(separator: ".")
        try update(&root, path[...]) { (_ t: inout TOML.Value?) throws(TOML.ParseError) in
            guard t == nil else { throw TOML.ParseError(line: line, message: "key '\(name)' defined twice") }
            t = v
        }
    }

    func update(_ table: inout [String: TOML.Value], _ path: ArraySlice<String>,
                _ f: (inout TOML.Value?) throws(TOML.ParseError) -> Void) throws(TOML.ParseError) {
        let head = path.first!
        if path.count == 1 {
            var slot = table[head]
            try f(&slot)
            table[head] = slot
            return
        }
        var child: [String: TOML.Value]
        switch table[head] {
        case nil: child = [:]
        case .table(let t): child = t
        default: throw fail("key '\(head)' is not a table")
        }
        try update(&child, path.dropFirst(), f)
        table[head] = .table(child)
    }
}

private extension String {
    func replacingUnderscores() -> String { String(filter { $0 != "_" }) }
}
