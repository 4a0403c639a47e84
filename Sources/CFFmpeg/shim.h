// FFmpeg's headers, plus static inline wrappers for the macros Swift cannot import.
// Nothing else belongs here: all logic lives in Swift (Sources/Media/Binding).
#ifndef MEDIA_WORKER_CFFMPEG_SHIM_H
#define MEDIA_WORKER_CFFMPEG_SHIM_H

#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavcodec/bsf.h>
#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/avutil.h>
#include <libavutil/display.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

/// `AVERROR(e)`: a POSIX errno as an FFmpeg error code.
static inline int cffmpeg_averror(int posix_error) { return AVERROR(posix_error); }

/// `AVERROR_EOF`: end of stream.
static inline int cffmpeg_averror_eof(void) { return AVERROR_EOF; }

/// `AVERROR(EAGAIN)`: the codec wants more input (or output to be drained) first.
static inline int cffmpeg_averror_eagain(void) { return AVERROR(EAGAIN); }

/// `AVERROR_INVALIDDATA`: the input is not what the demuxer or decoder expected.
static inline int cffmpeg_averror_invaliddata(void) { return AVERROR_INVALIDDATA; }

/// `AVERROR_PATCHWELCOME`: the data uses a feature FFmpeg does not implement.
static inline int cffmpeg_averror_patchwelcome(void) { return AVERROR_PATCHWELCOME; }

/// `AV_NOPTS_VALUE`: no timestamp.
static inline int64_t cffmpeg_nopts_value(void) { return AV_NOPTS_VALUE; }

/// `AV_TIME_BASE_Q`: the time base of `AVFormatContext.duration` (microseconds).
static inline AVRational cffmpeg_time_base_q(void) { return AV_TIME_BASE_Q; }

/// `FF_QP2LAMBDA`: scale of `AVCodecContext.global_quality` for `-q:v`.
static inline int cffmpeg_qp2lambda(void) { return FF_QP2LAMBDA; }

/// FFmpeg's text for an error code (what `av_err2str` gives), into a caller's buffer.
static inline void cffmpeg_strerror(int code, char *buffer, size_t size) {
    if (av_strerror(code, buffer, size) < 0) {
        snprintf(buffer, size, "FFmpeg error %d", code);
    }
}

#endif
