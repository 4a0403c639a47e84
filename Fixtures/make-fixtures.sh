#!/usr/bin/env bash
# Makes the fixture videos in this folder from FFmpeg's synthetic sources (testsrc2, sine).
# Only this script runs the `ffmpeg` program; media-worker itself never does.
#
# Every picture carries a marker in each corner of its UPRIGHT image: red top-left, green top-right,
# blue bottom-left, white bottom-right, so a test can tell rotation and mirroring apart by pixel.
# Usage: Fixtures/make-fixtures.sh   (needs Debian's ffmpeg; about a minute)
set -euo pipefail
cd "$(dirname "$0")"

ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
box() { echo "drawbox=x=$1:y=$2:w=iw/6:h=ih/6:color=$3:t=fill"; }
markers="$(box 0 0 red),$(box iw-iw/6 0 lime),$(box 0 ih-ih/6 blue),$(box iw-iw/6 ih-ih/6 white)"
video() { echo "testsrc2=size=$1:rate=${2:-30}:duration=${3:-2}"; }
tone() { echo "sine=frequency=440:sample_rate=${2:-48000}:duration=${1:-2}"; }
h264=(-c:v libx264 -preset veryfast -crf 30 -pix_fmt yuv420p)
aac=(-c:a aac -b:a 96k)

# H.264/AAC 1080p landscape, faststart.
ff -f lavfi -i "$(video 1920x1080)" -f lavfi -i "$(tone)" -vf "$markers" "${h264[@]}" "${aac[@]}" \
  -movflags +faststart landscape_1080p_h264_aac.mp4

# Portrait phone clips stored landscape (or upside down) with a display matrix. The stored frame is
# the upright picture turned the other way, so a player that applies the matrix shows it upright.
# FFmpeg 5.1 writes the matrix from the `rotate` tag only when copying streams, hence two steps, and
# its muxer reads that tag counterclockwise: `rotate=270` gives the matrix of a phone held upright
# (turn 90° clockwise to show; ffprobe says rotation=-90), as an iPhone writes it.
# The 90° one carries what a phone writes: creation time, GPS location, make and model.
portrait() { # NAME DEGREES TURN-FILTER [EXTRA ARGS...]
  local name=$1 degrees=$2 turn=$3
  shift 3
  ff -f lavfi -i "$(video 360x640)" -f lavfi -i "$(tone)" -vf "$markers,$turn" "${h264[@]}" "${aac[@]}" stored.tmp.mp4
  ff -i stored.tmp.mp4 -c copy -metadata:s:v:0 rotate="$degrees" -movflags +faststart+use_metadata_tags "$@" "$name"
  rm -f stored.tmp.mp4
}
portrait portrait_rot90.mp4 270 transpose=cclock \
  -metadata creation_time=2026-07-14T09:30:00Z -metadata location=+35.6586+139.7454/ \
  -metadata com.apple.quicktime.make=Apple -metadata com.apple.quicktime.model="iPhone 15"
portrait portrait_rot180.mp4 180 hflip,vflip
# What an iPhone records by default: HEVC in MOV, held upright, stereo at 44.1 kHz. Not remuxable
# to H.264, so it exercises rotation in the transcode path.
ff -f lavfi -i "$(video 360x640)" -f lavfi -i "$(tone 2 44100)" -vf "$markers,transpose=cclock" \
  -c:v libx265 -preset ultrafast -crf 30 -tag:v hvc1 -x265-params log-level=error -ac 2 "${aac[@]}" stored.tmp.mov
ff -i stored.tmp.mov -c copy -metadata:s:v:0 rotate=270 -metadata location=+48.8584+002.2945/ \
  -metadata com.apple.quicktime.make=Apple -metadata com.apple.quicktime.model="iPhone 15" \
  -movflags +faststart+use_metadata_tags portrait_hevc_rot90.mov
rm -f stored.tmp.mov
portrait portrait_rot270.mp4 90 transpose=clock

# HEVC Main 10 with HDR transfers: the SDR test picture converted to BT.2020 HLG and PQ for real.
for transfer in hlg:arib-std-b67 pq:smpte2084; do
  name=${transfer%%:*} trc=${transfer#*:}
  ff -f lavfi -i "$(video 640x360)" -f lavfi -i "$(tone)" \
    -vf "$markers,zscale=tin=bt709:pin=bt709:min=bt709:t=$trc:p=bt2020:m=2020_ncl:r=limited:npl=100,format=yuv420p10le" \
    -c:v libx265 -preset ultrafast -crf 28 -tag:v hvc1 \
    -x265-params "log-level=error:colorprim=bt2020:transfer=$trc:colormatrix=bt2020nc" \
    -color_primaries bt2020 -color_trc "$trc" -colorspace bt2020nc "${aac[@]}" -movflags +faststart \
    "hdr_hevc_${name}_10bit.mp4"
done

# VP9/Opus WebM; MOV with 5.1 PCM audio at 44.1 kHz; no audio at all.
ff -f lavfi -i "$(video 640x360)" -f lavfi -i "$(tone)" -vf "$markers" \
  -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -b:v 300k -c:a libopus -b:a 64k vp9_opus.webm
ff -f lavfi -i "$(video 640x360)" -f lavfi -i "$(tone 2 44100)" -vf "$markers" "${h264[@]}" \
  -af "pan=5.1|FL=c0|FR=c0|FC=c0|LFE=c0|BL=c0|BR=c0" -c:a pcm_s16le pcm_audio.mov
ff -f lavfi -i "$(video 640x360)" -vf "$markers" "${h264[@]}" -movflags +faststart no_audio.mp4

# Odd size: 4:2:0 cannot hold 854x481, so this one is 4:4:4 (High 4:4:4 Predictive).
ff -f lavfi -i "$(video 854x482)" -f lavfi -i "$(tone)" -vf "format=yuv444p,crop=854:481:0:0,$markers" \
  -c:v libx264 -preset veryfast -crf 30 -pix_fmt yuv444p "${aac[@]}" -movflags +faststart odd_size_854x481.mp4

# Variable frame rate: 60 fps for the first second, then every third frame (20 fps).
ff -f lavfi -i "$(video 640x360 60 3)" -f lavfi -i "$(tone 3)" \
  -vf "$markers,select='lt(t\,1)+not(mod(n\,3))'" -fps_mode vfr "${h264[@]}" "${aac[@]}" \
  -movflags +faststart vfr.mp4

# A first second of black, as phones often record, in ONE long GOP (x264's default keyint), so a
# thumbnail must decode past the keyframe to find a real picture.
ff -f lavfi -i "color=black:size=640x360:rate=30:duration=1" -f lavfi -i "$(video 640x360 30 2)" \
  -f lavfi -i "$(tone 3)" -filter_complex "[1:v]$markers[t];[0:v][t]concat=n=2:v=1:a=0[v]" \
  -map "[v]" -map 2:a "${h264[@]}" -sc_threshold 0 "${aac[@]}" -movflags +faststart black_first_second.mp4

# A longer job for the daemon's tests of killing, stopping and cancelling a running job: 20 s of
# 720p HEVC (so MEDIUM must transcode it, a few seconds of work), small because it is simple.
ff -f lavfi -i "testsrc2=size=1280x720:rate=30:duration=20" -f lavfi -i "$(tone 20)" -vf "$markers" \
  -c:v libx265 -preset ultrafast -crf 38 -tag:v hvc1 -x265-params log-level=error "${aac[@]}" \
  -movflags +faststart long_hevc_720p_20s.mp4

# Broken uploads: cut short with the index (moov) at the end, cut short after a faststart index,
# empty, not a video at all, and absurdly large frames.
ff -f lavfi -i "$(video 640x360)" -f lavfi -i "$(tone)" -vf "$markers" "${h264[@]}" "${aac[@]}" full.tmp.mp4
head -c $(($(stat -c %s full.tmp.mp4) / 2)) full.tmp.mp4 >truncated.mp4
head -c $(($(stat -c %s no_audio.mp4) * 6 / 10)) no_audio.mp4 >truncated_faststart.mp4
rm -f full.tmp.mp4
: >empty.mp4
printf 'This is a text file that someone named .mp4.\nIt holds no video at all.\n' >not_a_video.mp4
ff -f lavfi -i "color=gray:size=8192x8192:rate=1:duration=1" -c:v libx264 -preset ultrafast \
  -pix_fmt yuv420p huge_dimensions.mp4
ff -f lavfi -i "$(tone)" "${aac[@]}" audio_only.m4a

# Real-world variety (see Tests/MediaTests/VarietyTests.swift): old codecs and containers, slow
# motion, mid-stream changes, damage, a slow last frame. Small: 320x180 where the codec allows.
small() { video 320x180 "${1:-30}" "${2:-2}"; }
ff -f lavfi -i "$(small)" -f lavfi -i "$(tone)" -vf "$markers" -c:v libtheora -q:v 5 -c:a libvorbis theora_vorbis.ogg
ff -f lavfi -i "$(small)" -f lavfi -i "$(tone 2 44100)" -vf "$markers" -c:v wmv2 -b:v 300k -c:a wmav2 -b:a 64k wmv2_wma.wmv
ff -f lavfi -i "$(small 25)" -f lavfi -i "$(tone)" -vf "$markers" -c:v mpeg2video -b:v 500k -c:a mp2 -f vob mpeg2_ps.mpg
ff -f lavfi -i "$(video 720x576 25 0.4)" -f lavfi -i "$(tone 0.4)" -vf "$markers" -c:v dvvideo -pix_fmt yuv420p \
  -c:a pcm_s16le -ar 48000 -ac 2 dv_pal.dv
ff -f lavfi -i "$(video 352x288 15)" -f lavfi -i "$(tone 2 8000)" -vf "$markers" -c:v h263 -b:v 200k \
  -c:a aac -ar 8000 -ac 1 -b:a 16k h263_qcif.3gp
ff -f lavfi -i "$(small)" -f lavfi -i "$(tone 2 44100)" -vf "$markers" -c:v mpeg4 -q:v 5 -c:a libmp3lame -b:a 64k \
  mpeg4_mp3.avi
ff -f lavfi -i "$(small)" -f lavfi -i "$(tone 2 22050)" -vf "$markers" -c:v mjpeg -q:v 5 -c:a adpcm_ima_wav \
  mjpeg_adpcm.avi
ff -f lavfi -i "$(small)" -f lavfi -i "$(tone)" -vf "$markers" -c:v libvpx -b:v 300k -c:a libvorbis vp8_vorbis.webm
# iPhone slow motion: 240 fps (2 s, 480 frames).
ff -f lavfi -i "$(video 640x360 240 2)" -f lavfi -i "$(tone)" -vf "$markers" -c:v libx264 -preset ultrafast \
  -crf 32 -pix_fmt yuv420p "${aac[@]}" -movflags +faststart slowmo_240fps.mp4
# A WebRTC-style VP8 WebM whose picture grows from 320x180 to 480x270 at 1 s (keyframe), and an
# MPEG-TS whose video size AND audio rate and layout change at 1 s (concatenated recordings).
ff -f lavfi -i "$(small 30 1)" -vf "$markers" -c:v libvpx -b:v 300k -g 30 part1.tmp.webm
ff -f lavfi -i "$(video 480x270 30 1)" -vf "$markers" -c:v libvpx -b:v 300k -g 30 part2.tmp.webm
printf "file 'part1.tmp.webm'\nfile 'part2.tmp.webm'\n" >parts.tmp.txt
ff -f concat -safe 0 -i parts.tmp.txt -c copy resolution_change.webm
ff -f lavfi -i "$(small 30 1)" -f lavfi -i "$(tone 1 44100)" -vf "$markers" "${h264[@]}" -c:a mp2 -ac 1 part1.tmp.ts
ff -f lavfi -i "$(video 480x270 30 1)" -f lavfi -i "$(tone 1 48000)" -vf "$markers" "${h264[@]}" -c:a mp2 -ac 2 \
  -output_ts_offset 1 part2.tmp.ts
cat part1.tmp.ts part2.tmp.ts >stream_changes.ts
rm -f part1.tmp.* part2.tmp.* parts.tmp.txt
# Damaged in the middle: 4 s, a keyframe every second, 6 KB of the media data overwritten at 45 %
# (a bad sector, a broken transfer): players show a glitch and go on.
ff -f lavfi -i "$(small 30 4)" -f lavfi -i "$(tone 4)" -vf "$markers" "${h264[@]}" -g 30 "${aac[@]}" \
  -movflags +faststart damaged_middle.mp4
python3 - damaged_middle.mp4 <<'PY'
import random, sys
data = bytearray(open(sys.argv[1], "rb").read())
start = data.index(b"mdat") + 4
at = start + (len(data) - start) * 45 // 100
rng = random.Random(1)
data[at:at + 6000] = bytes(rng.randrange(256) for _ in range(6000))
open(sys.argv[1], "wb").write(data)
PY
# A slow last frame: 30 fps until 4.2 s, then the last frame stays on screen until 5 s (its MP4
# sample lasts 0.8 s), with 5 s of audio. A transcode must still last 5 s.
ff -f lavfi -i "$(small 30 5)" -f lavfi -i "$(tone 5)" -vf "$markers,select='lte(n\,126)'" -fps_mode vfr \
  "${h264[@]}" "${aac[@]}" slow_last_frame.mp4
python3 - slow_last_frame.mp4 <<'PY'
import struct, sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
def children(start, end):
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start:start + 8])
        yield start, size, kind
        start += size
def child(parent, kind):
    return next(box for box in children(parent[0] + 8, parent[0] + parent[1]) if box[2] == kind)
moov = next(box for box in children(0, len(data)) if box[2] == b"moov")
for trak in [box for box in children(moov[0] + 8, moov[0] + moov[1]) if box[2] == b"trak"]:
    mdia = child(trak, b"mdia")
    if data[child(mdia, b"hdlr")[0] + 16:][:4] != b"vide":
        continue
    mdhd = child(mdia, b"mdhd")
    timescale, duration = struct.unpack(">II", data[mdhd[0] + 20:mdhd[0] + 28])
    minf = child(mdia, b"minf")
    stbl = child(minf, b"stbl")
    stts = child(stbl, b"stts")
    count = struct.unpack(">I", data[stts[0] + 12:stts[0] + 16])[0]
    last = stts[0] + 16 + 8 * (count - 1)
    samples, delta = struct.unpack(">II", data[last:last + 8])
    extra = int(0.8 * timescale) - delta
    data[mdhd[0] + 24:mdhd[0] + 28] = struct.pack(">I", duration + extra)
    # The track header and edit list (in the movie's time scale) say 5 s too.
    movie_scale = struct.unpack(">I", data[child(moov, b"mvhd")[0] + 20:][:4])[0]
    tkhd = child(trak, b"tkhd")
    data[tkhd[0] + 28:tkhd[0] + 32] = struct.pack(">I", 5 * movie_scale)
    elst = child(child(trak, b"edts"), b"elst")
    data[elst[0] + 16:elst[0] + 20] = struct.pack(">I", 5 * movie_scale)
    # Split the last entry: all but the last frame keep their delta, the last one lasts 0.8 s.
    data[last:last + 8] = struct.pack(">II", samples - 1, delta) + struct.pack(">II", 1, delta + extra)
    data[stts[0] + 12:stts[0] + 16] = struct.pack(">I", count + 1)
    for box in (moov, trak, mdia, minf, stbl, stts):  # moov comes after mdat: no chunk offset moves
        data[box[0]:box[0] + 4] = struct.pack(">I", box[1] + 8)
    break
open(path, "wb").write(data)
PY

# Hostile uploads (see Tests/MediaTests/HostileInputTests.swift).
# A memory bomb: one 10000x10000 16-bit RGBA PNG frame (800 MB decoded) in 1 MB of MOV.
ff -f lavfi -i "color=c=red:size=10000x10000:rate=1" -frames:v 1 -pix_fmt rgba64be -c:v png \
  -compression_level 9 bomb_png_10000.mov
# A CPU bomb: 2 s at 100 fps, then one last frame stamped at 1790 s (a frame-rate filter that fills
# gaps makes 107,000 frames of it).
ff -f lavfi -i "$(video 160x90 100 2)" -vf "setpts='if(eq(N,199),1790/TB,PTS)'" -fps_mode passthrough \
  -c:v libx264 -preset ultrafast -pix_fmt yuv420p timestamp_gap.mkv
# Pixels declared absurdly narrow: 1:40 in the H.264 bitstream, 1:10000 in the MP4 'pasp' box.
# Taken at their word, the picture is 4 or 0 pixels wide.
ff -f lavfi -i "$(video 160x90 30 1)" -vf setsar=1/40 "${h264[@]}" absurd_aspect.mp4
python3 - absurd_aspect.mp4 <<'PY'
import struct, sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
at = data.index(b"pasp")
data[at + 4:at + 12] = struct.pack(">II", 1, 10000)
open(path, "wb").write(data)
PY
# The same lie told by the header: it declares 2 s, but its last frame is stamped at 10 hours.
ff -f lavfi -i "$(video 160x90 100 2)" -vf "setpts='if(eq(N,199),36000/TB,PTS)'" -fps_mode passthrough \
  -c:v libx264 -preset ultrafast -pix_fmt yuv420p timestamp_lie.mkv
python3 - timestamp_lie.mkv <<'PY'
import struct, sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
at = data.index(b"\x44\x89\x88")  # Segment Info > Duration, an 8-byte float in TimestampScale units (ms)
data[at + 3:at + 11] = struct.pack(">d", 2000.0)
open(path, "wb").write(data)
PY
# A MOV whose video track's data lives in ANOTHER file: a Macintosh alias data reference (dref
# 'alis') naming secret.mp4 beside it, which FFmpeg follows when enable_drefs is on.
ff -f lavfi -i "$(video 160x90 30 1)" "${h264[@]}" external.tmp.mov
python3 - external.tmp.mov external_reference.mov <<'PY'
import struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
def children(start, end):
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start:start + 8])
        yield start, size, kind
        start += size
def find(start, end, kind):
    return next(box for box in children(start, end) if box[2] == kind)
chain, start, end = [], 0, len(data)
for kind in [b"moov", b"trak", b"mdia", b"minf", b"dinf", b"dref"]:
    box = find(start, end, kind)
    chain.append(box)
    start, end = box[0] + 8, box[0] + box[1]
def padded(text, size):
    return bytes([len(text)]) + text.ljust(size, b"\0")
alias = (bytes(10) + padded(b"Vol", 27) + bytes(12) + padded(b"secret.mp4", 63) + bytes(16)
         + struct.pack(">HH", 1, 1) + bytes(16)
         + struct.pack(">hH", 2, 14) + b"Vol:secret.mp4" + struct.pack(">hH", -1, 0))
entry = struct.pack(">I4sI", 12 + len(alias), b"alis", 0) + alias
dref = struct.pack(">I4sII", 16 + len(entry), b"dref", 0, 1) + entry
offset, size, _ = chain[-1]
growth = len(dref) - size
for parent, parent_size, _ in chain[:-1]:  # moov comes after mdat: no chunk offset moves
    data[parent:parent + 4] = struct.pack(">I", parent_size + growth)
data[offset:offset + size] = dref
open(sys.argv[2], "wb").write(data)
PY
rm -f external.tmp.mov

# Hostile uploads, round two (see Tests/MediaTests/HostileCopyTests.swift). Each is small and made
# from a clean clip whose boxes or bitstream are then edited; `mp4edit` walks an MP4's boxes.
mp4edit() { python3 - "$@"; }
cat >mp4boxes.tmp.py <<'PY'
import struct
def children(data, start, end):
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start:start + 8])
        yield start, size, kind
        start += size
def path(data, *kinds):
    """The chain of boxes moov > trak > … (the first of each kind), as (offset, size, kind)."""
    chain, start, end = [], 0, len(data)
    for kind in kinds:
        box = next(b for b in children(data, start, end) if b[2] == kind)
        chain.append(box)
        start, end = box[0] + 8, box[0] + box[1]
    return chain
def replace(data, chain, new):
    """Puts `new` (a whole box) where the last box of `chain` is, growing its parents. Only for
    files whose moov comes after mdat, so no chunk offset moves."""
    offset, size, _ = chain[-1]
    for parent, parent_size, _ in chain[:-1]:
        data[parent:parent + 4] = struct.pack(">I", parent_size + len(new) - size)
    data[offset:offset + size] = new
PY
# An edit list that plays its 1 s clip 1000 times (12 KB of entries): copied packet by packet it
# writes a thousand times the file; every packet counts against the file's own size now.
ff -f lavfi -i "$(video 160x90 30 1)" -f lavfi -i "$(tone 1)" -vf "$markers" "${h264[@]}" "${aac[@]}" replay.tmp.mp4
mp4edit replay.tmp.mp4 edit_list_replay.mp4 <<'PY'
import struct, sys
exec(open("mp4boxes.tmp.py").read())
data = bytearray(open(sys.argv[1], "rb").read())
scale = struct.unpack(">I", data[path(data, b"moov", b"mvhd")[-1][0] + 20:][:4])[0]
moov = path(data, b"moov")[0]
traks = [b for b in children(data, moov[0] + 8, moov[0] + moov[1]) if b[2] == b"trak"]
for index in reversed(range(len(traks))):  # from the last: editing one moves those after it
    moov = path(data, b"moov")[0]
    trak = [b for b in children(data, moov[0] + 8, moov[0] + moov[1]) if b[2] == b"trak"][index]
    elst = [b for b in children(data, trak[0] + 8, trak[0] + trak[1]) if b[2] == b"edts"][0]
    chain = [moov, trak, elst, next(b for b in children(data, elst[0] + 8, elst[0] + elst[1]) if b[2] == b"elst")]
    entries = b"".join(struct.pack(">IiI", scale, 0, 0x10000) for _ in range(1000))
    replace(data, chain, struct.pack(">I4sII", 16 + len(entries), b"elst", 0, 1000) + entries)
mvhd = path(data, b"moov", b"mvhd")[-1]
data[mvhd[0] + 24:mvhd[0] + 28] = struct.pack(">I", 1000 * scale)
open(sys.argv[2], "wb").write(data)
PY
# What a dashcam or a drone writes into the H.264 stream itself: SEI user data with a position
# (and x264's own settings string, as every x264 file carries). A copy must carry neither.
ff -f lavfi -i "$(small 30 1)" -f lavfi -i "$(tone 1)" -vf "$markers" "${h264[@]}" "${aac[@]}" sei.tmp.mp4
ff -i sei.tmp.mp4 -c copy \
  -bsf:v "h264_metadata=sei_user_data=a8d3c5e0-1b7f-4c2d-9e6a-0f5b3d2c1a90+DASHCAM-GPS+35.6586+139.7454-SERIAL-X7Q" \
  -movflags +faststart sei_user_data.mp4
# A sample table claiming 88 million samples of 100 bytes in a 9 KB file.
ff -f lavfi -i "$(video 160x90 30 1)" "${h264[@]}" table.tmp.mp4
mp4edit table.tmp.mp4 sample_table_bomb.mp4 <<'PY'
import struct, sys
exec(open("mp4boxes.tmp.py").read())
data = bytearray(open(sys.argv[1], "rb").read())
stsz = path(data, b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsz")
replace(data, stsz, struct.pack(">I4sIII", 20, b"stsz", 0, 100, 88_000_000))
open(sys.argv[2], "wb").write(data)
PY
# The same bomb behind a first box no one knows (FFmpeg steps over it), and inside a compressed
# index (cmov: FFmpeg inflates it and parses the tables, which no check could see first).
python3 - sample_table_bomb.mp4 <<'PY'
import struct, sys, zlib
exec(open("mp4boxes.tmp.py").read())
data = bytearray(open(sys.argv[1], "rb").read())
open("sample_table_bomb_unknown_first.mp4", "wb").write(struct.pack(">I4s", 24, b"zzzz") + bytes(16) + data)
moov = path(data, b"moov")[0]
whole = bytes(data[moov[0]:moov[0] + moov[1]])
packed = zlib.compress(whole)
cmov = struct.pack(">I4s", 8 + 12 + 12 + len(packed), b"cmov") + struct.pack(">I4s4s", 12, b"dcom", b"zlib") \
    + struct.pack(">I4sI", 12 + len(packed), b"cmvd", len(whole)) + packed
compressed = data[:moov[0]] + struct.pack(">I4s", 8 + len(cmov), b"moov") + cmov + data[moov[0] + moov[1]:]
open("sample_table_bomb_cmov.mp4", "wb").write(compressed)
PY
# A grey 1280x720 VP9 keyframe, then 600 one-byte packets that each say "show the previous frame
# again" (VP9's show_existing_frame): 10 s at 60 fps in 8 KB, each frame a full picture to encode.
ff -f lavfi -i "color=gray:size=1280x720:rate=60" -frames:v 1 -c:v libvpx-vp9 -b:v 200k key.tmp.ivf
python3 - key.tmp.ivf repeat_frames.ivf <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
header, size = bytearray(data[:32]), struct.unpack("<I", data[32:36])[0]
key = data[44:44 + size]
struct.pack_into("<II", header, 16, 60, 1)  # 60 frames per second
struct.pack_into("<I", header, 24, 601)
frames = [struct.pack("<IQ", len(key), 0) + key]
frames += [struct.pack("<IQ", 1, n) + bytes([0x88]) for n in range(1, 601)]  # show_existing_frame, slot 0
open(sys.argv[2], "wb").write(bytes(header) + b"".join(frames))
PY
# Display matrices a copy must not pass on: a mirror (stored mirrored, so the matrix's mirror shows
# the markers upright), 45 degrees, a skew, and all zeros.
matrix() { # NAME a b c d  (16.16 fixed point)
  mp4edit matrix.tmp.mp4 "$@" <<'PY'
import struct, sys
exec(open("mp4boxes.tmp.py").read())
data = bytearray(open(sys.argv[1], "rb").read())
tkhd = path(data, b"moov", b"trak", b"tkhd")[-1]
a, b, c, d = (int(v) for v in sys.argv[3:7])
struct.pack_into(">9i", data, tkhd[0] + 48, a, b, 0, c, d, 0, 0, 0, 0x40000000)
open(sys.argv[2], "wb").write(data)
PY
}
ff -f lavfi -i "$(video 320x180 30 1)" -f lavfi -i "$(tone 1)" -vf "$markers,hflip" "${h264[@]}" "${aac[@]}" matrix.tmp.mp4
matrix mirror_matrix.mp4 -65536 0 0 65536
ff -f lavfi -i "$(video 320x180 30 1)" -f lavfi -i "$(tone 1)" -vf "$markers" "${h264[@]}" "${aac[@]}" matrix.tmp.mp4
matrix matrix_45.mp4 46341 46341 -46341 46341
matrix matrix_skew.mp4 65536 32768 0 65536
matrix matrix_zero.mp4 0 0 0 0
# A raw H.264 elementary stream (no container, no timestamps), as some cameras write.
ff -f lavfi -i "$(small 30 2)" -vf "$markers" "${h264[@]}" -f h264 raw_stream.h264
# A 0.3 s 720p H.264/AAC clip: under LOW (480 lines) it must be encoded down, whatever its size.
ff -f lavfi -i "$(video 1280x720 30 0.3)" -f lavfi -i "$(tone 0.3)" -vf "$markers" "${h264[@]}" "${aac[@]}" \
  -movflags +faststart short_720p.mp4
# An H.264/AAC MPEG-TS that would be copied, whose picture size and audio rate change at 1 s: the
# copy fails part-way (MP4 holds one set of parameters) and must become an encode.
ff -f lavfi -i "$(small 30 1)" -f lavfi -i "$(tone 1 44100)" -vf "$markers" "${h264[@]}" "${aac[@]}" part1.tmp.ts
ff -f lavfi -i "$(video 480x270 30 1)" -f lavfi -i "$(tone 1 48000)" -vf "$markers" "${h264[@]}" "${aac[@]}" \
  -output_ts_offset 1 part2.tmp.ts
cat part1.tmp.ts part2.tmp.ts >copy_breaks.ts
# A tiny VP8 WebM, 84x33 (odd sizes, one macroblock row and a bit).
ff -f lavfi -i "$(video 84x33 30 2)" -c:v libvpx -b:v 100k tiny_84x33.webm
# What a screen recorder or a camera writes: small, blurry H.264 (no SEI, so a copy is bit-exact)
# beside 16-bit PCM stereo in Matroska. The video fits every profile; the audio fits none. Its
# bit rate (the file's, PCM included) is over LOW's, so LOW makes the encode and the copy, and the
# encode of an already blurry picture comes out larger.
ff -f lavfi -i "$(video 640x360 30 2)" -f lavfi -i "$(tone 2 48000)" -vf "$markers" \
  -c:v libx264 -preset veryslow -crf 40 -pix_fmt yuv420p -bsf:v filter_units=remove_types=6 \
  -c:a pcm_s16le -ac 2 h264_pcm.mkv
rm -f mp4boxes.tmp.py replay.tmp.mp4 sei.tmp.mp4 table.tmp.mp4 key.tmp.ivf matrix.tmp.mp4 part1.tmp.ts part2.tmp.ts

# What dashcams, drones and phone apps hide beside the picture and sound, where a copy could carry
# it: the marker PRIVATE-MARKER-7Q in H.264 filler data (NAL 12) and an unspecified NAL (24), in
# HEVC user-data SEI (NAL 39) and an unspecified NAL (48), in an AV1 metadata OBU (ITU-T T.35), and
# in an AAC data stream element. Every picture fits every profile, so each would be copied.
cat >units.tmp.py <<'PY'
import re, struct
MARKER = b"PRIVATE-MARKER-7Q"

def annexb_units(data):
    """The NAL units of an Annex B stream, without their start codes."""
    starts = [m.end() for m in re.finditer(b"\x00\x00\x01", data)]
    units = []
    for i, start in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(data)
        units.append(data[start:end].rstrip(b"\x00"))
    return units

def annexb(units):
    return b"".join(b"\x00\x00\x00\x01" + u for u in units)

def adts_with_dse(data):
    """Every ADTS frame's raw data block led by a data stream element holding MARKER."""
    out, i = bytearray(), 0
    dse = bytes([0x80, len(MARKER)]) + MARKER  # id 4, tag 0, no byte alignment: whole bytes
    while i + 7 <= len(data):
        length = ((data[i + 3] & 3) << 11) | (data[i + 4] << 3) | (data[i + 5] >> 5)
        header, body = bytearray(data[i:i + 7]), data[i + 7:i + length]
        new = length + len(dse)
        header[3] = (header[3] & 0xFC) | (new >> 11)
        header[4] = (new >> 3) & 0xFF
        header[5] = ((new & 7) << 5) | (header[5] & 0x1F)
        out += header + dse + body
        i += length
    return bytes(out)
PY
ff -f lavfi -i "$(video 160x96 30 1)" -vf "$markers" "${h264[@]}" -f h264 units.tmp.h264
ff -f lavfi -i "$(tone 1)" "${aac[@]}" -f adts units.tmp.aac
python3 - <<'PY'
exec(open("units.tmp.py").read())
out = []
for unit in annexb_units(open("units.tmp.h264", "rb").read()):
    out.append(unit)
    if unit[0] & 0x1F in (1, 5):  # after each slice: filler data, then an unspecified unit
        out += [b"\x0c" + MARKER + b"\xff\x80", b"\x18" + MARKER + b"\x80"]
open("units.tmp.h264", "wb").write(annexb(out))
audio = adts_with_dse(open("units.tmp.aac", "rb").read())
open("units.tmp.aac", "wb").write(audio)
PY
ff -r 30 -i units.tmp.h264 -i units.tmp.aac -c copy -movflags +faststart privacy_h264_units.mp4
ff -f lavfi -i "$(video 160x96 30 1)" -vf "$markers" -c:v libx265 -preset fast -crf 30 -pix_fmt yuv420p \
  -x265-params log-level=error -f hevc units.tmp.hevc
python3 - <<'PY'
exec(open("units.tmp.py").read())
uuid = bytes.fromhex("a8d3c5e01b7f4c2d9e6a0f5b3d2c1a90")
sei = b"\x4e\x01" + bytes([5, len(uuid) + len(MARKER)]) + uuid + MARKER + b"\x80"
out = []
for unit in annexb_units(open("units.tmp.hevc", "rb").read()):
    kind = (unit[0] >> 1) & 0x3F
    if kind == 35 or (kind < 32 and not out):  # first unit of a picture: a user-data SEI before it
        out.append(sei)
    out.append(unit)
    if kind < 32:  # after each slice: an unspecified unit
        out.append(b"\x60\x01" + MARKER + b"\x80")
open("units.tmp.hevc", "wb").write(annexb(out))
PY
ff -r 30 -i units.tmp.hevc -i units.tmp.aac -c copy -tag:v hvc1 -movflags +faststart privacy_hevc_units.mp4
ff -f lavfi -i "$(video 160x96 30 1)" -vf "$markers" -c:v libsvtav1 -preset 12 -crf 45 -pix_fmt yuv420p \
  units.tmp.ivf
python3 - <<'PY'
exec(open("units.tmp.py").read())
data = open("units.tmp.ivf", "rb").read()
header, rest, out = data[:32], data[32:], bytearray()
payload = bytes([4, 0xB5]) + MARKER + b"\x80"  # metadata_type 4 (ITU-T T.35), country code, bytes
metadata = bytes([0x2A, len(payload)]) + payload  # OBU type 5 with a size field
while rest:
    size = struct.unpack("<I", rest[:4])[0]
    frame = rest[12:12 + size]
    # After the temporal delimiter (an OBU of type 2, size 0: 0x12 0x00).
    frame = frame[:2] + metadata + frame[2:] if frame[:2] == b"\x12\x00" else metadata + frame
    out += struct.pack("<I", len(frame)) + rest[4:12] + frame
    rest = rest[12 + size:]
open("units.tmp.ivf", "wb").write(header + out)
PY
ff -i units.tmp.ivf -i units.tmp.aac -c copy -movflags +faststart privacy_av1_metadata.mp4
rm -f units.tmp.py units.tmp.h264 units.tmp.aac units.tmp.hevc units.tmp.ivf

# H.264 whose second half has a new SPS (4:4:4, High 4:4:4 Predictive) under the first half's
# 4:2:0 configuration: no phone plays such a copy, so it must be encoded.
ff -f lavfi -i "$(video 160x96 30 1)" -vf "$markers" "${h264[@]}" -f h264 first.tmp.h264
ff -f lavfi -i "$(video 160x96 30 1)" -vf "$markers" -c:v libx264 -preset veryfast -crf 30 -pix_fmt yuv444p \
  -f h264 second.tmp.h264
cat first.tmp.h264 second.tmp.h264 >both.tmp.h264
ff -r 30 -i both.tmp.h264 -c copy -movflags +faststart sps_change_444.mp4
# Interlaced H.264 (top field first), as TV cameras and old camcorders write it.
ff -f lavfi -i "$(video 320x180 30 1)" -vf "$markers" -c:v libx264 -preset veryfast -crf 30 -pix_fmt yuv420p \
  -flags +ildct+ilme -x264-params interlaced=1:tff=1 -movflags +faststart interlaced_h264.mp4
rm -f first.tmp.h264 second.tmp.h264 both.tmp.h264
# 30 s with a single keyframe, at its start: each piece of it would decode from there.
ff -f lavfi -i "$(video 160x96 30 30)" -vf "$markers" -c:v libx264 -preset veryfast -crf 40 -pix_fmt yuv420p \
  -g 100000 -keyint_min 100000 -sc_threshold 0 -movflags +faststart sparse_keyframes.mp4
# A second of 4K HEVC in 140 KB: the child's memory, budgeted from the upload's bytes and then its
# picture, still lets it be made, AV1 variant included.
ff -f lavfi -i "$(video 3840x2160 30 1)" -f lavfi -i "$(tone 1)" -vf "$markers" -c:v libx265 -preset ultrafast \
  -crf 40 -pix_fmt yuv420p -x265-params log-level=error -tag:v hvc1 "${aac[@]}" -movflags +faststart uhd_hevc_1s.mp4

# Four levels of sound for loudness levelling (6 s each, small pictures): a concert filmed on a
# phone (loud white noise, about -8 LUFS), a whisper on a voice memo (mono, about -41 LUFS), room
# tone (about -60 LUFS: under the floor, left as it is) and a clip already at -16 LUFS.
loudness() { # NAME AUDIO-SOURCE
  ff -f lavfi -i "$(video 160x96 10 6)" -f lavfi -i "$2" -vf "$markers" "${h264[@]}" -c:a aac -b:a 128k -shortest \
    -movflags +faststart "$1"
}
loudness loudness_concert.mp4 "anoisesrc=color=white:amplitude=0.5:duration=6:seed=1,aformat=channel_layouts=stereo"
loudness loudness_whisper.mp4 "anoisesrc=color=pink:amplitude=0.05:duration=6:seed=2,aformat=channel_layouts=mono"
loudness loudness_room_tone.mp4 "anoisesrc=color=pink:amplitude=0.0055:duration=6:seed=3,aformat=channel_layouts=stereo"
loudness loudness_levelled.mp4 "sine=frequency=1000:sample_rate=48000:duration=6,volume=1.785,aformat=channel_layouts=stereo"

# Sound that starts a second before the picture (a camera that records sound first; cut streams):
# a tone in that second, then silence, so a test hears whether the output keeps the two together.
ff -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=5,volume=enable='gte(t,1)':volume=0" \
  -itsoffset 1 -f lavfi -i "$(video 320x180 30 4)" -map 1:v -map 0:a -vf "$markers" "${h264[@]}" -c:a aac -b:a 64k \
  early_audio.mkv

du -ch -- *.mp4 *.mov *.webm *.m4a *.mkv | tail -n 1
