#!/usr/bin/env python3
"""Fuzzes media-worker with mutated and crafted uploads, as an attacker or a broken phone would.

Each case mutates a fixture (byte flips, cut and duplicated chunks, MP4 box sizes and table counts
set to zero or huge, EBML sizes corrupted, absurd dimensions and timestamps in headers, truncation,
edit lists that replay or retime, sample tables claiming millions of samples, floods of repeated VP9
frames, SEI payloads, display matrices that mirror, turn, skew or vanish)
or crafts a file that tries to make FFmpeg open another one (HLS, DASH, FFconcat, SDP, URLs), and
runs `media-worker process --type FULL_PROCESSING --json` on it with a memory and CPU limit and a
wall-clock timeout; every path an upload's bytes can take is on: the loudness scan (an audio-only
read), the storyboard from a second up (tiles from the pass's frames, or keyframes decoded on their
own beside a copy), copies, the stills. A case passes when the process exits 0 with a report, or 1 with an error whose
code is one of the schema's and whose message is readable; it fails on a signal death, a hang, an
unknown code, any open of the canary file that lies beside every input, or an output carrying the
uploader's SEI user data. It prints the most CPU seconds per KB of upload any case cost.

    python3 .ci/fuzz.py                      # CI's slice: 300 cases, seed 1
    python3 .ci/fuzz.py --cases 5000 --seed 7 --keep /tmp/fuzz-finds   # a long run

Failing inputs are copied to --keep (default: a temporary folder, printed); turn each into a
regression input under Tests/ once fixed.
"""
import argparse
import ctypes
import json
import os
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Fixtures")
SEEDS = [
    "landscape_1080p_h264_aac.mp4", "portrait_rot90.mp4", "portrait_hevc_rot90.mov", "hdr_hevc_pq_10bit.mp4",
    "vp9_opus.webm", "no_audio.mp4", "odd_size_854x481.mp4", "vfr.mp4", "black_first_second.mp4",
    "timestamp_gap.mkv", "timestamp_lie.mkv", "external_reference.mov", "audio_only.m4a",
    "edit_list_replay.mp4", "sei_user_data.mp4", "sample_table_bomb.mp4", "repeat_frames.ivf", "mirror_matrix.mp4",
    "matrix_45.mp4", "raw_stream.h264", "copy_breaks.ts", "privacy_h264_units.mp4", "privacy_hevc_units.mp4",
    "privacy_av1_metadata.mp4",
]
# Strings of the uploader's that no output may carry: the SEI fixture's user data, the privacy
# fixtures' marker (filler, unspecified units, HEVC SEI, AV1 metadata OBUs, AAC data stream
# elements) and the x265 settings an HEVC upload's own encoder left in its SEI and hvcC.
PRIVATE = [b"DASHCAM-GPS", b"PRIVATE-MARKER-7Q", b"x265 (build"]
CODES = {"input_missing", "input_unreadable", "unsupported", "corrupt_input", "limits_exceeded", "storage",
         "database", "crashed", "timeout", "cancelled", "internal"}
MP4_BOXES = [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd", b"stsz", b"stco", b"co64", b"stts", b"stss",
             b"ctts", b"stsc", b"mdat", b"avcC", b"hvcC", b"tkhd", b"mdhd", b"elst", b"edts", b"mvhd", b"hdlr"]
MP4_TABLES = [b"stsz", b"stco", b"stts", b"stss", b"ctts", b"stsc", b"elst"]
SAMPLE_ENTRIES = [b"avc1", b"hvc1", b"hev1", b"mp4v", b"vp09"]
EBML_IDS = [bytes.fromhex(h) for h in ["1a45dfa3", "18538067", "1549a966", "1654ae6b", "1f43b675", "ae", "e0",
                                       "a3", "a0", "1c53bb6b", "4489"]]


class CanaryWatch:
    """inotify on the canary file: counts every open or read of it, by any process."""

    def __init__(self, path):
        self.libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0 or self.libc.inotify_add_watch(self.fd, path.encode(), 0x20 | 0x01) < 0:
            raise OSError(ctypes.get_errno(), "inotify")

    def events(self):
        count = 0
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return count
            offset = 0
            while offset + 16 <= len(data):
                count += 1
                offset += 16 + struct.unpack_from("I", data, offset + 12)[0]


def find_all(data, pattern, limit=64):
    found, start = [], 0
    while len(found) < limit:
        at = data.find(pattern, start)
        if at < 0:
            return found
        found.append(at)
        start = at + 1
    return found


def flip(data, rng):
    for _ in range(rng.randint(1, 20)):
        at = rng.randrange(len(data))
        data[at] ^= rng.randint(1, 255)


def cut(data, rng):
    start = rng.randrange(len(data))
    del data[start:start + rng.randint(1, max(1, len(data) // 8))]


def duplicate(data, rng):
    start = rng.randrange(len(data))
    chunk = data[start:start + rng.randint(1, max(1, len(data) // 8))]
    at = rng.randrange(len(data))
    data[at:at] = chunk


def truncate(data, rng):
    del data[rng.randint(1, len(data)):]


def mp4_box_size(data, rng):
    spots = [at - 4 for kind in MP4_BOXES for at in find_all(data, kind) if at >= 4]
    if spots:
        at = rng.choice(spots)
        data[at:at + 4] = struct.pack(">I", rng.choice([0, 1, 7, 8, 0xFFFFFFFF, 0x7FFFFFFF, rng.randrange(1 << 32)]))


def mp4_table_count(data, rng):
    spots = [at for kind in MP4_TABLES for at in find_all(data, kind)]
    if spots:
        at = rng.choice(spots) + 8  # after type, version and flags: the entry count
        data[at:at + 4] = struct.pack(">I", rng.choice([0, 0xFFFFFFFF, 0x40000000, rng.randrange(1 << 32)]))


def dimensions(data, rng):
    spots = [at - 4 for kind in SAMPLE_ENTRIES for at in find_all(data, kind) if at >= 4]
    value = rng.choice([0, 1, 2, 16383, 65535, rng.randrange(65536)])
    if spots:
        at = rng.choice(spots) + 32  # VisualSampleEntry width, then height
        data[at:at + 4] = struct.pack(">HH", value, rng.choice([value, 1, 65535]))
    else:  # Matroska PixelWidth (B0) / PixelHeight (BA), 2-byte values
        for kind in (b"\xb0\x82", b"\xba\x82"):
            for at in find_all(data, kind, 4):
                data[at + 2:at + 4] = struct.pack(">H", value)


def ebml_size(data, rng):
    spots = [at + len(kind) for kind in EBML_IDS for at in find_all(data, kind)]
    if spots:
        at = rng.choice(spots)
        size = rng.choice([b"\x80", b"\xff", b"\x01\xff\xff\xff\xff\xff\xff\xff", b"\x08\x00\x00\x00\x00",
                           bytes([rng.randrange(256)])])
        data[at:at + len(size)] = size


def timestamps(data, rng):
    # Matroska Cluster Timecode (E7) and Block timecodes; MP4 stts deltas and elst media times.
    for at in find_all(data, b"\xe7", 8):
        if rng.random() < 0.5 and at + 2 < len(data):
            data[at + 2] = rng.randrange(256)
    for kind in (b"stts", b"elst", b"mdhd"):
        for at in find_all(data, kind, 2):
            field = at + 12 + 4 * rng.randrange(4)
            data[field:field + 4] = struct.pack(">I", rng.choice([0, 0xFFFFFFFF, 0x7FFFFFFF, rng.randrange(1 << 32)]))


def edit_list(data, rng):
    """An edit list with more entries, replays of the media, odd rates or empty edits."""
    for at in find_all(data, b"elst", 2):
        count_at = at + 8
        if count_at + 16 > len(data):
            continue
        count = struct.unpack(">I", data[count_at:count_at + 4])[0]
        entry = data[count_at + 4:count_at + 16]
        choice = rng.randrange(4)
        if choice == 0:  # the first entry repeated N times (only the count grows, the box does not)
            data[count_at:count_at + 4] = struct.pack(">I", rng.choice([2, 50, 100000, 0xFFFFFFFF]))
        elif choice == 1:  # entries inserted: replays of the same media
            times = rng.choice([2, 10, 500])
            data[count_at + 4:count_at + 4] = bytes(entry) * times
            data[count_at:count_at + 4] = struct.pack(">I", count + times)
        elif choice == 2:  # a rate other than 1
            data[count_at + 12:count_at + 16] = struct.pack(">I", rng.choice([0, 0x8000, 0x20000, 0xFFFFFFFF]))
        else:  # an empty edit (media time -1) or a media time past the end
            data[count_at + 8:count_at + 12] = struct.pack(">I", rng.choice([0xFFFFFFFF, 0x7FFFFFFF]))


def sample_table(data, rng):
    """stsz: a constant sample size and a huge count, or a count larger than the table."""
    for at in find_all(data, b"stsz", 2):
        if at + 16 <= len(data):
            data[at + 8:at + 16] = struct.pack(">II", rng.choice([0, 1, 100, 65536]),
                                               rng.choice([1000, 88_000_000, 0xFFFFFFFF, rng.randrange(1 << 32)]))


def repeat_frames(data, rng):
    """IVF: more one-byte "show the previous frame" packets, or the frame count and rate changed."""
    if data[:4] != b"DKIF":
        return
    choice = rng.randrange(3)
    if choice == 0:
        last = struct.unpack("<Q", data[-9:-1])[0] if len(data) > 44 else 0
        data += b"".join(struct.pack("<IQ", 1, last + n) + bytes([0x88]) for n in range(1, rng.choice([10, 5000])))
    elif choice == 1:
        struct.pack_into("<II", data, 16, rng.choice([1, 240, 1000, 0xFFFFFFFF]), rng.choice([1, 1000, 0]))
    else:
        struct.pack_into("<I", data, 24, rng.choice([0, 1, 0xFFFFFFFF]))


def sei_payload(data, rng):
    """Bytes of an H.264 SEI NAL unit (type 6) changed: sizes, payload types, the payload itself."""
    spots = [at for at in find_all(data, b"\x06\x05") if at > 4]
    if spots:
        at = rng.choice(spots)
        for _ in range(rng.randint(1, 6)):
            offset = at + rng.randrange(2, 40)
            if offset < len(data):
                data[offset] = rng.randrange(256)


def display_matrix(data, rng):
    """A track header's matrix: a mirror, a turn, a skew, zeros, or noise."""
    spots = find_all(data, b"tkhd", 4)
    if spots:
        at = rng.choice(spots) + 4 + 44  # version 0: matrix after 40 bytes of fields
        one = 0x10000
        matrix = rng.choice([(-one, 0, 0, one), (0, one, -one, 0), (one, one // 2, 0, one), (0, 0, 0, 0),
                             (one, 0, 0, -one), (46341, 46341, -46341, 46341),
                             tuple(rng.randrange(-(1 << 31), 1 << 31) for _ in range(4))])
        if at + 16 <= len(data):
            struct.pack_into(">iiii", data, at, matrix[0], matrix[1], matrix[2], matrix[3])


MUTATORS = [flip, flip, cut, duplicate, truncate, mp4_box_size, mp4_table_count, dimensions, ebml_size, timestamps,
            edit_list, sample_table, repeat_frames, sei_payload, display_matrix]


def crafted(rng, canary, port):
    """A file that tries to make FFmpeg read the canary or connect somewhere."""
    name = os.path.basename(canary)
    target = rng.choice([canary, name, "file:" + canary, f"http://127.0.0.1:{port}/x.ts",
                         f"concat:{canary}|{canary}", f"subfile,,start,0,end,0,,:{canary}"])
    kind = rng.randrange(5)
    if kind == 0:
        text = f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n{target}\n#EXT-X-ENDLIST\n"
    elif kind == 1:
        text = f"ffconcat version 1.0\nfile {target}\n"
    elif kind == 2:
        text = (f'<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
                f'mediaPresentationDuration="PT2S"><Period><AdaptationSet><Representation id="1" bandwidth="1">'
                f'<BaseURL>{target}</BaseURL><SegmentBase/></Representation></AdaptationSet></Period></MPD>')
    elif kind == 3:
        text = (f"v=0\no=- 0 0 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=video {port} RTP/AVP 96\n"
                f"a=rtpmap:96 H264/90000\n")
    else:
        text = f"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n{target}\n"
    return bytearray(text.encode())


def run_case(binary, path, out, timeout, memory):
    started = time.monotonic()
    process = subprocess.Popen(
        [binary, "process", path, "--out", out, "--type", "FULL_PROCESSING", "--json", "--max-memory", memory,
         "--max-cpu", str(timeout * 2), "--storyboard-after", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    hung = False
    try:
        stdout, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        hung = True
        process.kill()
        stdout, _ = process.communicate()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return process.returncode, stdout, hung, time.monotonic() - started, usage


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "debug", "media-worker"))
    parser.add_argument("--timeout", type=int, default=60, help="wall-clock seconds per case")
    parser.add_argument("--memory", default="2G", help="address-space limit per case (--max-memory)")
    parser.add_argument("--keep", help="folder for failing inputs")
    arguments = parser.parse_args()
    rng = random.Random(arguments.seed)
    seeds = {name: open(os.path.join(FIXTURES, name), "rb").read() for name in SEEDS}
    work = tempfile.mkdtemp(prefix="media-worker-fuzz-")
    keep = arguments.keep or os.path.join(work, "finds")
    os.makedirs(keep, exist_ok=True)
    canary = os.path.join(work, "secret.mp4")
    shutil.copy(os.path.join(FIXTURES, "no_audio.mp4"), canary)
    watch = CanaryWatch(canary)
    listener = __import__("socket").socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    port = listener.getsockname()[1]

    outcomes, problems = {}, []
    peak_rss, peak_cpu, peak_wall = 0, 0.0, 0.0
    worst = (0.0, 0.0, 0, "")  # the most CPU seconds per KB of upload: (ratio, CPU s, bytes, seed)
    previous = resource.getrusage(resource.RUSAGE_CHILDREN)
    for case in range(arguments.cases):
        if rng.random() < 0.1:
            data, origin = crafted(rng, canary, port), "crafted"
        else:
            origin = rng.choice(SEEDS)
            data = bytearray(seeds[origin])
            for _ in range(rng.randint(1, 3)):
                if data:
                    rng.choice(MUTATORS)(data, rng)
        extension = rng.choice([os.path.splitext(origin)[1] or ".mp4", ".mp4", ".m3u8", ".png", ".mkv"])
        path = os.path.join(work, f"case{extension}")
        with open(path, "wb") as file:
            file.write(data)
        out = os.path.join(work, "out")
        shutil.rmtree(out, ignore_errors=True)
        status, stdout, hung, wall, usage = run_case(arguments.binary, path, out, arguments.timeout, arguments.memory)
        cpu = (usage.ru_utime - previous.ru_utime) + (usage.ru_stime - previous.ru_stime)
        previous = usage
        peak_rss = max(peak_rss, usage.ru_maxrss)
        peak_cpu, peak_wall = max(peak_cpu, cpu), max(peak_wall, wall)
        if cpu / max(1, len(data) / 1024) > worst[0]:
            worst = (cpu / max(1, len(data) / 1024), cpu, len(data), origin)
        problem = None
        opened = watch.events()
        connected = 0
        try:
            while True:
                listener.accept()[0].close()
                connected += 1
        except BlockingIOError:
            pass
        if hung:
            problem = f"hang (over {arguments.timeout} s)"
        elif status < 0:
            problem = f"killed by signal {-status} ({signal.Signals(-status).name})"
        elif opened or connected:
            problem = f"opened the canary {opened} times, {connected} connections"
        elif status == 0:
            try:
                report = json.loads(stdout)
                outcome = "completed" if report.get("outputs") else "empty report"
            except ValueError:
                problem = "exit 0 without a JSON report"
            for name in os.listdir(out) if os.path.isdir(out) else []:
                with open(os.path.join(out, name), "rb") as output:
                    written = output.read()
                if any(secret in written for secret in PRIVATE):
                    problem = f"{name} carries the uploader's data (SEI, filler, metadata OBU, DSE or hvcC)"
        elif status == 1:
            try:
                error = json.loads(stdout)["error"]
                outcome = error["code"]
                if outcome not in CODES or len(error.get("message", "")) < 10:
                    problem = f"error without a schema code or message: {error}"
                elif outcome == "internal":  # what the input's bytes cause is never media-worker's bug
                    problem = f"input blamed on media-worker: {error['message']}"
                elif outcome in ("input_missing", "input_unreadable"):  # the file is there and readable
                    problem = f"a readable input called {outcome}: {error['message']}"
            except (ValueError, KeyError, TypeError):
                problem = "exit 1 without a JSON error"
        else:
            problem = f"exit status {status}"
        if problem:
            outcome = "PROBLEM"
            saved = os.path.join(keep, f"case{case:05d}-{origin}{extension}")
            shutil.copy(path, saved)
            problems.append(f"case {case} ({origin}): {problem} -> {saved}")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    print(f"fuzz: {arguments.cases} cases, seed {arguments.seed}, binary {arguments.binary}")
    for outcome, count in sorted(outcomes.items(), key=lambda item: -item[1]):
        print(f"  {outcome:18} {count}")
    print(f"  peak RSS {peak_rss / 1024:.0f} MiB, peak CPU {peak_cpu:.1f} s, peak wall {peak_wall:.1f} s per case")
    print(f"  most CPU per KB of upload: {worst[0]:.3f} CPU s/KB ({worst[1]:.2f} CPU s for {worst[2]} bytes, from "
          f"{worst[3]}; files under 1 KB count as 1 KB)")
    for line in problems:
        print("  " + line)
    shutil.rmtree(os.path.join(work, "out"), ignore_errors=True)
    if problems:
        print(f"{len(problems)} problems; inputs kept in {keep}")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
