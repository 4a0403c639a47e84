/// The version of what media-worker makes of an input. Results kept for reuse are served only to
/// jobs of the same version: bump it whenever encoder settings, stages or outputs change, so old
/// outputs are never handed out for new settings.
public enum Pipeline {
    /// 1: FULL_PROCESSING with stills first, frame-rate cap by dropping, square pixels, the last
    /// frame's own duration, audio kept with video across timestamp jumps.
    /// 2: copies without SEI units and with a display matrix made anew; mirror matrices honoured;
    /// a repeated frame shown longer instead of encoded again.
    public static let version = 2
}
