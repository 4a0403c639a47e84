// C's string arrays (`argv`, `envp`, libpq's keyword and parameter lists), built from Swift strings
// in one place: each string copied with its NUL, a NULL after the last, all freed when the body
// returns. A `nil` element stays a NULL pointer (libpq's SQL NULL).

/// Calls `body` with `strings` as a NULL-terminated `char *const[]` (posix_spawn's `argv`).
public func withCStringArray<R>(
    _ strings: [String?], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) throws -> R
) rethrows -> R {
    let copies: [UnsafeMutablePointer<CChar>?] =
        strings.map { string in
            string.map { string in
                let bytes = string.utf8CString
                let copy = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
                bytes.withUnsafeBufferPointer { copy.initialize(from: $0.baseAddress!, count: $0.count) }
                return copy
            }
        } + [nil]
    defer { copies.forEach { $0?.deallocate() } }
    return try copies.withUnsafeBufferPointer { try body($0.baseAddress!) }
}

/// Calls `body` with `strings` as a NULL-terminated `const char *const[]` (libpq, Landlock paths).
public func withConstCStringArray<R>(
    _ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>) throws -> R
) rethrows -> R {
    try withCStringArray(strings) { array in
        try array.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: strings.count + 1) { try body($0) }
    }
}
