import CFFmpeg

/// Owns a libavfilter graph with one video input and one video output, for what swscale cannot
/// do: rotation (`transpose`, `hflip,vflip`) and HDR tone mapping (`zscale`, `tonemap`).
final class FilterGraph {
    private var graph: UnsafeMutablePointer<AVFilterGraph>?
    private let source: UnsafeMutablePointer<AVFilterContext>
    private let sink: UnsafeMutablePointer<AVFilterContext>

    /// Builds `buffer → description → buffersink` for frames shaped like `input`, stamped in
    /// `timeBase`.
    init(description: String, input: FrameShape, timeBase: Rational, threads: Int) throws(FFmpegError) {
        let graph = try allocated("avfilter_graph_alloc", avfilter_graph_alloc())
        self.graph = graph
        graph.pointee.nb_threads = Int32(threads)
        let sar = input.sampleAspectRatio ?? Rational(1, 1)
        let arguments =
            "video_size=\(input.width)x\(input.height):pix_fmt=\(input.pixelFormat)"
            + ":time_base=\(timeBase.numerator)/\(timeBase.denominator)"
            + ":pixel_aspect=\(sar.numerator)/\(sar.denominator)"
        var sourceContext: UnsafeMutablePointer<AVFilterContext>?
        var sinkContext: UnsafeMutablePointer<AVFilterContext>?
        do throws(FFmpegError) {
            try check("avfilter_graph_create_filter(buffer)") {
                avfilter_graph_create_filter(
                    &sourceContext, avfilter_get_by_name("buffer"), "in", arguments, nil, graph)
            }
            try check("avfilter_graph_create_filter(buffersink)") {
                avfilter_graph_create_filter(&sinkContext, avfilter_get_by_name("buffersink"), "out", nil, nil, graph)
            }
            // The graph's open ends: "in" is our buffer source's output, "out" our sink's input.
            // avfilter_graph_parse_ptr consumes both lists and hands back what it left unlinked.
            var outputs = avfilter_inout_alloc()
            var inputs = avfilter_inout_alloc()
            defer {
                avfilter_inout_free(&outputs)
                avfilter_inout_free(&inputs)
            }
            guard let sourceEnd = outputs, let sinkEnd = inputs else {
                throw FFmpegError.allocation("avfilter_inout_alloc")
            }
            sourceEnd.pointee.name = av_strdup("in")
            sourceEnd.pointee.filter_ctx = sourceContext
            sinkEnd.pointee.name = av_strdup("out")
            sinkEnd.pointee.filter_ctx = sinkContext
            try check("avfilter_graph_parse_ptr(\(description))") {
                avfilter_graph_parse_ptr(graph, description, &inputs, &outputs, nil)
            }
            try check("avfilter_graph_config") { avfilter_graph_config(graph, nil) }
        } catch {
            avfilter_graph_free(&self.graph)
            throw error
        }
        source = sourceContext!
        sink = sinkContext!
    }

    deinit {
        avfilter_graph_free(&graph)
    }

    /// What comes out of the graph.
    var output: FrameShape {
        FrameShape(
            width: Int(av_buffersink_get_w(sink)), height: Int(av_buffersink_get_h(sink)),
            pixelFormat: av_buffersink_get_format(sink),
            sampleAspectRatio: Rational(aspectRatio: av_buffersink_get_sample_aspect_ratio(sink)))
    }

    /// The time base of the frames that come out (changed by filters such as `fps`).
    var outputTimeBase: Rational { Rational(av_buffersink_get_time_base(sink)) ?? microsecondTimeBase }

    /// The frame rate of what comes out, when the graph knows it.
    var outputFrameRate: Rational? { Rational(av_buffersink_get_frame_rate(sink)) }

    /// Feeds one frame (nil: the end of the input). The graph takes its own reference.
    func push(_ frame: Frame?) throws(FFmpegError) {
        try check("av_buffersrc_add_frame_flags") {
            av_buffersrc_add_frame_flags(source, frame?.pointer, Int32(AV_BUFFERSRC_FLAG_KEEP_REF))
        }
    }

    /// Takes the next filtered frame, if one is ready.
    func pull(into frame: Frame) throws(FFmpegError) -> Received {
        frame.reset()
        return try Received("av_buffersink_get_frame", returned: av_buffersink_get_frame(sink, frame.pointer))
    }
}

/// The size and format of the frames a graph takes or gives.
struct FrameShape: Equatable {
    var width: Int
    var height: Int
    /// An `AVPixelFormat` value.
    var pixelFormat: Int32
    var sampleAspectRatio: Rational?
}

extension Frame {
    var shape: FrameShape {
        FrameShape(
            width: width, height: height, pixelFormat: pointer.pointee.format,
            sampleAspectRatio: Rational(aspectRatio: pointer.pointee.sample_aspect_ratio))
    }
}
