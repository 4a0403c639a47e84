#!/usr/bin/env python3
"""media-worker's benchmark: measures it against the `ffmpeg` program doing the same work, in one run.

Usage: python3 .ci/bench.py [--rounds N] [--skip-long] [--work DIR] [--chat | --eta | --profiles]
(or: bash .ci/bench)

Generates long synthetic inputs (testsrc2 + sine, nothing committed), then for each task runs
media-worker (release build) and the equivalent ffmpeg/ffprobe commands N rounds each, alternating
which goes first, and prints the median wall and CPU time (user + system of the process and its
children, from wait4) and their ratio. Peak RSS comes from the same rusage.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(command, quiet=True):
    """Runs a command; returns (wall seconds, cpu seconds, peak RSS in MiB)."""
    start = time.monotonic()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL if quiet else None, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - start
    if status != 0:
        sys.exit(f"failed ({status}): {' '.join(command)}\n{process.stderr.read().decode()}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def run_all(commands):
    """Runs commands one after the other, summing wall and CPU time, taking the largest RSS."""
    results = [run(c) for c in commands]
    return sum(r[0] for r in results), sum(r[1] for r in results), max(r[2] for r in results)


def ffmpeg(*args):
    return ["ffmpeg", "-nostdin", "-v", "error", "-y", *args]


def compare(name, ours, theirs, rounds):
    """Median of `rounds` runs of two command lists, alternating order. Returns a table row."""
    measured = {"ours": [], "theirs": []}
    for round_number in range(rounds):
        order = [("ours", ours), ("theirs", theirs)]
        if round_number % 2:
            order.reverse()
        for key, commands in order:
            measured[key].append(run_all(commands))
    median = {key: (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
              for key, runs in measured.items()}
    row = (name, *median["ours"], *median["theirs"], median["ours"][0] / median["theirs"][0],
           median["ours"][1] / median["theirs"][1])
    print("| {} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {:.3f} | {:.3f} |".format(*row), flush=True)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-long", action="store_true", help="skip the 10-minute RSS measurement")
    parser.add_argument("--profiles", action="store_true", help="only measure the quality profiles (size, SSIM, speed)")
    parser.add_argument("--work", default=None, help="folder for inputs and outputs (default: a temporary one)")
    parser.add_argument("--chat", action="store_true", help="only measure the daemon's chat figures (stills, reuse)")
    parser.add_argument("--eta", action="store_true", help="only measure the time left the progress bar shows")
    options = parser.parse_args()

    subprocess.run(["swift", "build", "-c", "release", "--product", "media-worker"], cwd=ROOT, check=True)
    binary = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip() + "/media-worker"
    work = options.work or tempfile.mkdtemp(prefix="media-worker-bench-")
    os.makedirs(work, exist_ok=True)
    path = lambda name: os.path.join(work, name)

    print(f"generating inputs in {work}", flush=True)
    source = "testsrc2=size=1920x1080:rate=30:duration=60"
    tone = "sine=frequency=440:sample_rate=48000:duration=60"
    if not os.path.exists(path("landscape_1080p_60s.mp4")):
        run(ffmpeg("-f", "lavfi", "-i", source, "-f", "lavfi", "-i", tone, "-c:v", "libx264", "-preset", "veryfast",
                   "-crf", "18", "-g", "60", "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart",
                   path("landscape_1080p_60s.mp4")))
    if not os.path.exists(path("phone_720p_60s.mp4")):
        # What MEDIUM can copy: H.264 4:2:0 720x1280 under 2.5 Mbit/s with AAC, held upright.
        run(ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=60", "-f", "lavfi", "-i", tone,
                   "-vf", "transpose=cclock", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
                   "-maxrate", "2000k", "-bufsize", "4000k", "-c:a", "aac", "-b:a", "128k", path("phone.tmp.mp4")))
        run(ffmpeg("-i", path("phone.tmp.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=270",
                   path("phone_720p_60s.mp4")))
    if not options.skip_long and not os.path.exists(path("landscape_1080p_600s.mp4")):
        with open(path("ten.txt"), "w") as listing:
            listing.write("file 'landscape_1080p_60s.mp4'\n" * 10)
        run(ffmpeg("-f", "concat", "-safe", "0", "-i", path("ten.txt"), "-c", "copy",
                   path("landscape_1080p_600s.mp4")))

    source = path("landscape_1080p_60s.mp4")
    medium = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "24", "-maxrate", "2500k", "-bufsize", "5000k"]
    scale_720 = "scale=1280:720:in_color_matrix=bt709:out_color_matrix=bt709:out_range=tv,format=yuv420p"
    ff_compression = ffmpeg("-i", source, "-vf", scale_720, *medium, "-c:a", "aac", "-b:a", "128k",
                            "-movflags", "+faststart", "-map_metadata", "-1", path("ff_video.mp4"))
    ours = lambda input_name, kind, *extra: [binary, "process", input_name, "--out", path("mw_" + kind.lower()),
                                             "--type", kind, "--json", *extra]

    # Where FULL_PROCESSING took its stills and preview from, so the ffmpeg runs make the same ones.
    report = json.loads(subprocess.run(ours(source, "FULL_PROCESSING"), capture_output=True, text=True,
                                       check=True).stdout)
    still_at = report["outputs"]["poster"]["timeMs"] / 1000
    ff_separate = [
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", source],
        ff_compression,
        ffmpeg("-ss", "0", "-t", "3", "-i", source, "-an", "-vf",
               "scale=640:360:in_color_matrix=bt709:out_color_matrix=bt709:out_range=tv,format=yuv420p,fps=24",
               "-c:v", "libx264", "-preset", "veryfast", "-crf", "28", "-maxrate", "600k", "-bufsize", "1200k",
               "-movflags", "+faststart", "-map_metadata", "-1", path("ff_preview.mp4")),
        ffmpeg("-ss", str(still_at), "-i", source, "-frames:v", "1", "-vf", "scale=1280:720", "-q:v", "3",
               path("ff_poster.jpg")),
        ffmpeg("-ss", str(still_at), "-i", source, "-frames:v", "1", "-vf", "scale=320:180", "-q:v", "3",
               path("ff_thumbnail.jpg")),
    ]

    if options.profiles:
        return measure_profiles(binary, source, path)
    if options.chat:
        return measure_chat(binary, source, path, options.rounds)
    if options.eta:
        return measure_eta(binary, path)

    print(f"\n{options.rounds} rounds, medians; CPU = user + system seconds\n")
    print("| task (60 s 1080p30 input unless said) | media-worker wall s | CPU s | ffmpeg wall s | CPU s "
          "| wall ratio | CPU ratio |")
    print("|---|---|---|---|---|---|---|")
    # The `ffmpeg` runs do not level loudness: the like-for-like rows turn it off, and the table
    # after them says what levelling costs.
    compare("COMPRESSION MEDIUM vs `ffmpeg` with the same filters and x264/AAC settings",
            [ours(source, "COMPRESSION", "--loudness", "off")], [ff_compression], options.rounds)
    compare("FULL_PROCESSING vs ffprobe + 4 `ffmpeg` runs (video, preview, poster, thumbnail)",
            [ours(source, "FULL_PROCESSING", "--loudness", "off")], ff_separate, options.rounds)
    phone = path("phone_720p_60s.mp4")
    compare("COMPRESSION of a compatible 720p phone clip: remux vs media-worker's own transcode (`--no-remux`)",
            [ours(phone, "COMPRESSION")], [ours(phone, "COMPRESSION", "--no-remux")], options.rounds)

    print("\n| where the time goes (60 s 1080p30) | wall s | CPU s |\n|---|---|---|")
    for name, command in [
        ("decode only (video and audio; `ffmpeg -f null`)", ffmpeg("-i", source, "-f", "null", "-")),
        ("media-worker METADATA", ours(source, "METADATA")),
        ("media-worker THUMBNAIL (6 seeks)", ours(source, "THUMBNAIL")),
        ("media-worker PREVIEW alone", ours(source, "PREVIEW")),
        ("media-worker COMPRESSION, loudness levelled (the default)", ours(source, "COMPRESSION")),
        ("media-worker COMPRESSION, `--loudness off`", ours(source, "COMPRESSION", "--loudness", "off")),
        ("media-worker FULL_PROCESSING", ours(source, "FULL_PROCESSING")),
    ]:
        runs = [run(command) for _ in range(options.rounds)]
        print(f"| {name} | {statistics.median(r[0] for r in runs):.2f} | {statistics.median(r[1] for r in runs):.2f} |",
              flush=True)

    if not options.skip_long:
        print("\n| FULL_PROCESSING, 1080p30 input | wall s | peak RSS MiB |\n|---|---|---|")
        rss = {}
        for name in ["landscape_1080p_60s.mp4", "landscape_1080p_600s.mp4"]:
            wall, _, rss[name] = run(ours(path(name), "FULL_PROCESSING"))
            print(f"| {name} | {wall:.1f} | {rss[name]:.0f} |", flush=True)
        growth = rss["landscape_1080p_600s.mp4"] / rss["landscape_1080p_60s.mp4"] - 1
        print(f"\npeak RSS of the 10-minute input is {growth * 100:+.1f} % of the 1-minute one's")
    measure_chat(binary, source, path, options.rounds)
    measure_eta(binary, path)
    if not options.work:
        shutil.rmtree(work)


def eta_at_half(command):
    """Runs `command` with its stderr on a pseudo-terminal, so its progress bar draws, and returns
    the time left the bar said when it first reached 50 % and the seconds the run actually went on."""
    import pty, re, select
    master, slave = pty.openpty()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    said, at, pending = None, None, b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        chunk = b""
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                chunk = b""
        if not chunk and process.poll() is not None:
            break
        frames = (pending + chunk).split(b"\r")
        pending = frames.pop()
        for frame in frames:
            match = re.search(r"(\d+)%.*about (\d+) (s|min) left", frame.decode(errors="replace"))
            if match and said is None and int(match.group(1)) >= 50:
                said, at = int(match.group(2)) * (60 if match.group(3) == "min" else 1), time.monotonic()
    process.wait()
    os.close(master)
    return said, (time.monotonic() - at) if at is not None else None


def measure_eta(binary, path):
    """The time left `process`'s progress bar shows at 50 %, against the time the run then really
    took, on ten jobs of the benchmark inputs and the longer fixtures."""
    fixtures = os.path.join(ROOT, "Fixtures")
    jobs = [
        ("landscape_1080p_60s.mp4", "COMPRESSION", "MEDIUM"), ("landscape_1080p_60s.mp4", "FULL_PROCESSING", "MEDIUM"),
        ("landscape_1080p_60s.mp4", "COMPRESSION", "LOW"), ("landscape_1080p_60s.mp4", "COMPRESSION", "HIGH"),
        ("landscape_1080p_60s.mp4", "FULL_PROCESSING", "HIGH"),
        ("landscape_1080p_60s.mp4", "COMPRESSION", "MEDIUM", "--max-bytes", "4M"),
        ("phone_720p_60s.mp4", "COMPRESSION", "LOW"), ("phone_720p_60s.mp4", "FULL_PROCESSING", "LOW"),
        (os.path.join(fixtures, "long_hevc_720p_20s.mp4"), "COMPRESSION", "ULTRA"),
        (os.path.join(fixtures, "long_hevc_720p_20s.mp4"), "FULL_PROCESSING", "HIGH"),
    ]
    # Jobs over within a second or two (copies, tiny fixtures) show no time left, or "about 1 s":
    # listed apart, not counted.
    short = [("phone_720p_60s.mp4", "FULL_PROCESSING", "HIGH"), ("landscape_1080p_60s.mp4", "COMPRESSION", "ULTRA"),
             (os.path.join(fixtures, "sparse_keyframes.mp4"), "COMPRESSION", "ULTRA")]
    print("\n| job | said at 50 % s | then took s | error |\n|---|---|---|---|")
    within = 0
    for counted, (name, kind, profile, *extra) in [(True, job) for job in jobs] + [(False, job) for job in short]:
        source = name if os.path.isabs(name) else path(name)
        said, took = eta_at_half([binary, "process", source, "--out", path("eta_out"), "--type", kind,
                                  "--profile", profile, *extra])
        shutil.rmtree(path("eta_out"), ignore_errors=True)
        label = f"{os.path.basename(source)} {kind} {profile} {' '.join(extra)}".strip() + ("" if counted else " (short)")
        if said is None or took is None:
            print(f"| {label} | not shown | | |", flush=True)
            continue
        error = (said - took) / took
        within += counted and abs(error) <= 0.2
        print(f"| {label} | {said} | {took:.1f} | {error * 100:+.0f} % |", flush=True)
    print(f"\nwithin ±20 % at 50 %: {within} of {len(jobs)} jobs")


def measure_chat(binary, source, path, rounds):
    """The daemon on a throwaway PostgreSQL with local storage, a 60 s 1080p FULL_PROCESSING job at
    a time: from `startedAt` to the stills being published (the upload's `thumbnailUrl`), the whole
    job, the same job with the stills made in the pass instead, and a forwarded copy (another
    upload of the same bytes), all read from the job's own `processingLogs`."""
    import datetime
    pg = path("pg")
    shutil.rmtree(pg, ignore_errors=True)
    url = subprocess.run(["bash", os.path.join(ROOT, ".ci/postgres"), "start", pg], capture_output=True, text=True,
                         check=True).stdout.split("'")[1]
    try:
        storage = path("chat_storage")
        shutil.rmtree(storage, ignore_errors=True)
        os.makedirs(storage)
        environment = dict(os.environ, DATABASE_URL=url, MEDIA_STORAGE_URL="file://" + storage,
                           MEDIA_WORKER_POLL_INTERVAL="0.2", MEDIA_WORKER_LOG_LEVEL="error",
                           MEDIA_WORKER_TMPDIR=path(""))
        worker = lambda *args, **extra: subprocess.run([binary, *args], env=dict(environment, **extra),
                                                       capture_output=True, text=True, check=True).stdout.strip()
        worker("migrate")

        def job(**settings):
            job_id = worker("enqueue", source, "--type", "FULL_PROCESSING")
            worker("serve", "--until-idle", **settings)
            logs = subprocess.run(["psql", url, "-Atc", "SELECT \"processingLogs\"::text, \"startedAt\"::text "
                                   f"FROM video_processing WHERE id = {job_id}"], capture_output=True, text=True,
                                  check=True).stdout.strip()
            events_json, started = logs.rsplit("|", 1)
            start = datetime.datetime.fromisoformat(started).replace(tzinfo=datetime.timezone.utc)
            at = {e["event"]: datetime.datetime.fromisoformat(e["at"].replace("Z", "+00:00"))
                  for e in json.loads(events_json)}
            seconds = lambda name: (at[name] - start).total_seconds() if name in at else None
            return seconds("stills"), seconds("completed"), seconds("reused")

        staged, plain = [], []
        for round_number in range(rounds):
            order = [("staged", {}), ("plain", {"MEDIA_WORKER_STILLS_FIRST": "off"})]
            if round_number % 2:
                order.reverse()
            for kind, settings in order:
                (staged if kind == "staged" else plain).append(job(MEDIA_WORKER_REUSE="off", **settings))
        # The first job with reuse on makes the result; the second, another upload of the same bytes, reuses it.
        job()
        forwarded = [job()[2] for _ in range(rounds)]
        median = lambda values: statistics.median(v for v in values if v is not None)
        print("\n| chat figures (60 s 1080p30, FULL_PROCESSING MEDIUM, local storage), medians | seconds |\n|---|---|")
        print(f"| startedAt → stills published (upload's thumbnailUrl set) | {median(s[0] for s in staged):.2f} |")
        print(f"| startedAt → COMPLETED, stills first | {median(s[1] for s in staged):.2f} |")
        print(f"| startedAt → COMPLETED, stills from the pass (MEDIA_WORKER_STILLS_FIRST=off) | "
              f"{median(p[1] for p in plain):.2f} |")
        print(f"| forwarded copy: startedAt → COMPLETED by reuse (nothing decoded) | {median(forwarded):.3f} |")
        ratio = median(s[1] for s in staged) / median(p[1] for p in plain) - 1
        print(f"\nstills first costs {ratio * 100:+.1f} % of the whole job")
    finally:
        subprocess.run(["bash", os.path.join(ROOT, ".ci/postgres"), "stop", pg], capture_output=True)


def measure_profiles(binary, source, path):
    """Each profile's transcode of the 60 s 1080p input: size, bit rate, SSIM against the source
    scaled to the output's size, and encode speed."""
    print("\n| profile | output | size MB | video kbit/s | SSIM (Y) | PSNR (Y) dB | encode fps |\n|---|---|---|---|---|---|---|")
    for profile in ["LOW", "MEDIUM", "HIGH", "ULTRA"]:
        out = path("profile_" + profile)
        wall, _, _ = run([binary, "process", source, "--out", out, "--type", "COMPRESSION", "--profile", profile,
                          "--no-remux", "--json"])
        video = os.path.join(out, "video.mp4")
        probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", video],
                                          capture_output=True, text=True, check=True).stdout)
        stream = next(s for s in probe["streams"] if s["codec_type"] == "video")
        width, height = stream["width"], stream["height"]
        scores = subprocess.run(ffmpeg("-v", "info", "-i", video, "-i", source, "-lavfi",
                                       f"[0:v]split[a][b];[1:v]scale={width}:{height},split[r1][r2];[a][r1]ssim;[b][r2]psnr", "-f", "null", "-")
                                , capture_output=True, text=True).stderr
        ssim = next(line.split("Y:")[1].split()[0] for line in scores.splitlines() if "SSIM Y:" in line)
        psnr = next(line.split("y:")[1].split()[0] for line in scores.splitlines() if "PSNR y:" in line)
        print(f"| {profile} | {width}x{height} | {os.path.getsize(video) / 1e6:.2f} | {int(stream['bit_rate']) // 1000} "
              f"| {ssim} | {psnr} | {1800 / wall:.0f} |", flush=True)


if __name__ == "__main__":
    main()
