/// The version of what media-worker makes of an input. Results kept for reuse are served only to
/// jobs of the same version: bump it whenever encoder settings, stages or outputs change, so old
/// outputs are never handed out for new settings.
public enum Pipeline {
    /// 1: FULL_PROCESSING with stills first, frame-rate cap by dropping, square pixels, the last
    /// frame's own duration, audio kept with video across timestamp jumps.
    /// 2: copies without SEI units and with a display matrix made anew; mirror matrices honoured;
    /// a repeated frame shown longer instead of encoded again.
    /// 3: copies decided stream by stream (a video copied beside a converted audio and the other
    /// way round); audio never encoded at more than the source's rate.
    /// 4: copies keep only what a decoder needs (an allow-list of units, the decoder configuration
    /// rebuilt from the parameter sets), audio always encoded, no copy of interlaced video or of a
    /// stream whose parameter sets change.
    /// 5: every output's audio levelled to the loudness target (EBU R128, one linear gain).
    public static let version = 5
}
