/// Decodes single pictures to RGB, as a viewer would see them: for checking outputs (tests,
/// `doctor`) and for anything that needs pixels rather than files.
public enum Snapshot {
    /// The first frame of an image or video file, upright and tone-mapped like a poster, as RGB.
    public static func firstFrame(of path: String) throws(MediaError) -> Bitmap {
        let opened = try Probe.open(path: path, limits: .default)
        do {
            let reader = try VideoFrameReader(
                input: opened.file, stream: opened.videoStream, threads: 1, maxPixels: MediaLimits.default.maxPixels)
            let frame = try Frame()
            guard try reader.next(into: frame) else {
                throw MediaError.corruptInput("\(path) holds no decodable frame")
            }
            let upright = try DisplayTransform(video: opened.info.video)
                .apply(to: frame, timeBase: reader.stream.timeBase, threads: 1)
            return try Scaler(source: upright, width: upright.width, height: upright.height, layout: .rgb)
                .scale(upright).packedBitmap()
        } catch let error as MediaError {
            throw error
        } catch {
            throw MediaError.decoding(error)
        }
    }
}
