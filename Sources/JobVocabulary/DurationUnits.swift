// `Duration` in the units other interfaces speak: libpq and poll(2) want milliseconds, sd_notify
// microseconds, metrics nanoseconds, people seconds. One conversion, so none is hand-rolled.

extension Duration {
    /// The duration in seconds, fractional.
    public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    /// The duration in whole milliseconds, rounded down.
    public var inMilliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
    /// The duration in whole microseconds, rounded down.
    public var inMicroseconds: Int64 { components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000 }
    /// The duration in whole nanoseconds, rounded down.
    public var inNanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
