/// Decodes single pictures to RGB, as a viewer would see them: for checking outputs (the tests)
/// and for anything that needs pixels rather than files.
public enum Snapshot {
    /// Besides videos, the stills media-worker writes (never accepted as uploads).
    static let stillFormats: Set<String> = ["jpeg_pipe", "png_pipe"]

    /// The first frame of an image or video file, upright and tone-mapped like a poster, as RGB.
    public static func firstFrame(of path: String) throws(MediaError) -> Bitmap {
        let opened = try Probe.open(path: path, limits: .default, formats: UploadFormats.accepted.union(stillFormats))
        do {
            let reader = try VideoFrameReader(opened, threads: 1, limits: .default)
            let frame = try Frame()
            guard try reader.next(into: frame) else {
                throw MediaError.corruptInput("the file holds no decodable frame")
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
