#!/usr/bin/env python3
"""Long videos in pieces: what cutting, encoding pieces and joining costs and looks like.

Usage: python3 .ci/piecesbench.py [--binary .build/release/media-worker] [--minutes 8] [--pieces 30]
                                  [--cache ~/.cache/media-worker-pieces] [--workers 1,2,4]

Makes (once, cached) a 1080p30 H.264 input of --minutes with moving detail and a stereo tone,
6 Mbit/s, keyframes every 10 s, with the `ffmpeg` program; then runs `media-worker process --type
COMPRESSION` on it in one pass and with `--pieces` (the pieces one after another on this
machine, each step timed in the log), and prints: bytes, SSIM of both against the source and of
the pieces against the one pass, per-frame SSIM at each join against its ten neighbours, the A/V
offset at the end, CPU seconds of both, each piece's time, the audio and join times, the critical
path (longest piece, then the join; the audio runs beside the pieces) and the time to the video
projected for 1, 2, 4 and 16 hosts of this machine's speed, one piece per host at a time.
With --workers, also the daemon end to end on a throwaway PostgreSQL (`.ci/postgres`) and local
storage: the input enqueued as COMPRESSION, served by that many `serve --concurrency 1` daemons
at once, time from the row's insert to COMPLETED; first one daemon with pieces off (one pass).
"""
import argparse, json, math, os, re, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_input(path, minutes):
    if os.path.exists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    seconds = int(minutes * 60)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
         "-filter_complex", "[0:v]noise=alls=6:allf=t[v];[1:a]aformat=channel_layouts=stereo[a]",
         "-map", "[v]", "-map", "[a]", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "6M", "-maxrate", "6M",
         "-bufsize", "12M", "-g", "300",
         "-c:a", "aac", "-b:a", "128k", path + ".partial.mp4"], check=True)
    os.rename(path + ".partial.mp4", path)


def run(binary, source, out, pieces):
    """Runs `process`; returns (report, CPU seconds, wall seconds, the log's piece steps)."""
    command = [binary, "process", source, "--out", out, "--type", "COMPRESSION", "--json", "-v"]
    command += ["--pieces", str(pieces)] if pieces else []
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        stdout = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        log.seek(0)
        lines = log.read().decode(errors="replace").splitlines()
    if status != 0:
        sys.exit(f"process failed: {lines[-3:]}")
    steps = []
    for line in lines:
        if 'msg="piece step done"' in line:
            steps.append(dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line)))
    report = json.loads(stdout)
    return report, usage.ru_utime + usage.ru_stime, report["elapsedMs"] / 1000, steps


def frame_ssim(path, reference):
    graph = f"movie={path},format=yuv420p[a];movie={reference},format=yuv420p[b];[b][a]scale2ref[r][o];[o][r]ssim"
    out = subprocess.run(["ffprobe", "-v", "error", "-f", "lavfi", "-i", graph, "-show_entries",
                          "frame_tags=lavfi.ssim.All", "-of", "csv=p=0"], capture_output=True, text=True, check=True)
    return [float(v) for v in out.stdout.split()]


def stream_ends(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,start_time,duration",
                          "-of", "json", path], capture_output=True, text=True, check=True)
    return {s["codec_type"]: float(s["start_time"]) + float(s["duration"]) for s in json.loads(out.stdout)["streams"]}


def psql(url, sql):
    return subprocess.run(["psql", url, "-Atqc", sql], capture_output=True, text=True, check=True).stdout.strip()


def served(binary, source, pg_url, work, workers, pieces):
    """Seconds from insert to COMPLETED with `workers` daemons (pieces of `pieces` s; 0: off)."""
    database = f"pieces_{workers}_{int(pieces)}"
    psql(pg_url, f"DROP DATABASE IF EXISTS {database}")
    psql(pg_url, f"CREATE DATABASE {database}")
    url = pg_url.replace("/postgres?", f"/{database}?")
    storage = os.path.join(work, database)
    os.makedirs(storage, exist_ok=True)
    environment = dict(os.environ, DATABASE_URL=url, MEDIA_STORAGE_URL="file://" + storage,
                       MEDIA_WORKER_LOG_LEVEL="warning", MEDIA_WORKER_TMPDIR=work,
                       MEDIA_WORKER_PIECE_SECONDS=str(pieces), MEDIA_WORKER_POLL_INTERVAL="0.5")
    subprocess.run([binary, "migrate"], env=environment, check=True, stdout=subprocess.DEVNULL)
    job = subprocess.run([binary, "enqueue", source, "--type", "COMPRESSION"], env=environment, check=True,
                         capture_output=True, text=True).stdout.strip()
    daemons = [subprocess.Popen([binary, "serve", "--concurrency", "1"], env=environment,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(workers)]
    try:
        while psql(url, f"SELECT status FROM video_processing WHERE id = {job}") not in ("COMPLETED", "FAILED"):
            time.sleep(0.5)
    finally:
        for daemon in daemons:
            daemon.terminate()
        for daemon in daemons:
            daemon.wait(timeout=120)
    status, seconds = psql(url, f"""SELECT status, extract(epoch FROM "completedAt" - "createdAt")
        FROM video_processing WHERE id = {job}""").split("|")
    if status != "COMPLETED":
        sys.exit(f"the job ended {status}")
    return float(seconds)


def fleet(binary, source, pieces, counts):
    work = tempfile.mkdtemp(prefix="media-worker-pieces-")
    pg = f"/tmp/media-worker-pieces-pg-{os.getpid()}"  # the postgres user must reach it
    exports = subprocess.run(["bash", os.path.join(ROOT, ".ci/postgres"), "start", pg], check=True,
                             capture_output=True, text=True, env=dict(os.environ, PG_PORT="5441")).stdout
    pg_url = exports.split("'")[1]
    try:
        one_pass = served(binary, source, pg_url, work, 1, 0)
        print(f"daemon, one pass (pieces off), 1 worker: {one_pass:.1f} s to COMPLETED")
        for count in counts:
            seconds = served(binary, source, pg_url, work, count, pieces)
            print(f"daemon, pieces of {pieces:g} s, {count} worker(s) of one encode slot on this 2-core machine: "
                  f"{seconds:.1f} s to COMPLETED ({one_pass / seconds:.2f}x one pass)")
    finally:
        subprocess.run(["bash", os.path.join(ROOT, ".ci/postgres"), "stop", pg], check=False)
        subprocess.run(["rm", "-rf", work], check=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_binary = os.path.join(ROOT, ".build/release/media-worker")
    if not os.path.exists(default_binary):
        default_binary = os.path.join(ROOT, ".build/debug/media-worker")
    parser.add_argument("--binary", default=default_binary)
    parser.add_argument("--minutes", type=float, default=8)
    parser.add_argument("--pieces", type=float, default=30)
    parser.add_argument("--cache", default=os.path.expanduser("~/.cache/media-worker-pieces"))
    parser.add_argument("--workers", help="also the daemon end to end with these numbers of workers, e.g. 1,2,4")
    parser.add_argument("--no-local", action="store_true", help="skip the local one-pass/pieces comparison")
    parser.add_argument("--no-ssim", action="store_true", help="times and CPU only")
    arguments = parser.parse_args()
    source = os.path.join(arguments.cache, f"long_1080p_{arguments.minutes:g}min.mp4")
    make_input(source, arguments.minutes)
    print(f"input: {os.path.basename(source)}, {os.path.getsize(source)} bytes; binary {arguments.binary}")
    if not arguments.no_local:
        compare(arguments, source)
    if arguments.workers:
        fleet(arguments.binary, source, arguments.pieces, [int(count) for count in arguments.workers.split(",")])


def compare(arguments, source):
    with tempfile.TemporaryDirectory() as work:
        single_dir, pieces_dir = os.path.join(work, "single"), os.path.join(work, "pieces")
        single, single_cpu, single_wall, _ = run(arguments.binary, source, single_dir, None)
        pieced, pieces_cpu, pieces_wall, steps = run(arguments.binary, source, pieces_dir, arguments.pieces)
        single_video = os.path.join(single_dir, "video.mp4")
        pieces_video = os.path.join(pieces_dir, "video.mp4")
        print(f"one pass: {single['outputs']['video']['bytes']} bytes, {single_cpu:.1f} CPU-s, {single_wall:.1f} s")
        print(f"pieces:   {pieced['outputs']['video']['bytes']} bytes, {pieces_cpu:.1f} CPU-s, {pieces_wall:.1f} s "
              f"({pieced['outputs']['video']['encoder']['why'][0]})")
        print(f"CPU, pieces against one pass: {pieces_cpu / single_cpu:.3f}x ({(pieces_cpu / single_cpu - 1) * 100:+.1f} %)")
        if not arguments.no_ssim:
            pictures(single_video, pieces_video, source, steps)
        timings(single_wall, steps)


def pictures(single_video, pieces_video, source, steps):
    """SSIM of both against the source and each other, each join against its neighbours, A/V at the end."""
    single_ssim = frame_ssim(single_video, source)
    pieces_ssim = frame_ssim(pieces_video, source)
    mean = lambda values: sum(values) / max(1, len(values))
    print(f"SSIM against the source: one pass {mean(single_ssim):.5f}, pieces {mean(pieces_ssim):.5f} "
          f"({mean(pieces_ssim) / mean(single_ssim):.5f} of one pass); frames {len(single_ssim)} / {len(pieces_ssim)}")
    print(f"SSIM of the pieces against the one pass: {mean(frame_ssim(pieces_video, single_video)):.5f}")
    fps = 30
    videos = [step for step in steps if step["step"] == "video"]
    print("| join at s | frame | SSIM | neighbours (±5) | difference | one pass at that frame |")
    print("|---|---|---|---|---|---|")
    worst = 0
    for step in videos[1:]:
        frame = round(float(step["start"]) * fps)
        around = [pieces_ssim[i] for i in range(frame - 5, frame + 6) if i != frame and 0 <= i < len(pieces_ssim)]
        difference = pieces_ssim[frame] - mean(around)
        worst = min(worst, difference)
        print(f"| {float(step['start']):.2f} | {frame} | {pieces_ssim[frame]:.4f} | {mean(around):.4f} | "
              f"{difference:+.4f} | {single_ssim[frame]:.4f} |")
    print(f"worst join against its neighbours: {worst:+.4f}")
    for name, path in (("one pass", single_video), ("pieces", pieces_video)):
        ends = stream_ends(path)
        print(f"A/V at the end, {name}: video ends {ends['video']:.4f} s, audio {ends['audio']:.4f} s, "
              f"offset {abs(ends['video'] - ends['audio']) * 1000:.1f} ms")


def timings(single_wall, steps):
    """Each piece's time, the audio and the join, the critical path and the time projected for N hosts."""
    mean = lambda values: sum(values) / max(1, len(values))
    videos = [step for step in steps if step["step"] == "video"]
    piece_times = [float(step["seconds"]) for step in videos]
    audio = next((float(s["seconds"]) for s in steps if s["step"] == "audio"), 0.0)
    join = next((float(s["seconds"]) for s in steps if s["step"] == "join"), 0.0)
    print(f"pieces: {len(piece_times)}, each {min(piece_times):.1f}-{max(piece_times):.1f} s "
          f"(sum {sum(piece_times):.1f} s); audio {audio:.1f} s; join {join:.2f} s")
    critical = max(max(piece_times), audio) + join
    print(f"critical path (longest piece or the audio, then the join): {critical:.1f} s against one pass {single_wall:.1f} s")
    for hosts in (1, 2, 4, 16):
        rounds = math.ceil(len(piece_times) / hosts)
        projected = rounds * mean(piece_times) + join if hosts < len(piece_times) else critical
        print(f"projected time to the video with {hosts} host(s): {projected:.1f} s "
              f"({rounds} round(s) of pieces of {mean(piece_times):.1f} s, then the join)")


if __name__ == "__main__":
    main()
