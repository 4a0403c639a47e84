#!/usr/bin/env python3
"""media-worker's burst benchmark: what one person sees while somebody else shares a whole trip.

Usage: python3 .ci/burstbench.py [--baseline GIT_REV] [--clips N] [--work DIR] [--tree DIR]

Starts a throwaway PostgreSQL (.ci/postgres), builds the release binary, makes N distinct 30 s
1080p clips (testsrc2 + sine, bytes told apart by a title tag so nothing is reused) and, with one
`serve --concurrency 2` daemon on local storage:
  1. user A enqueues the N clips as FULL_PROCESSING;
  2. once both encode slots are busy with A's clips, user B sends one short clip (FULL_PROCESSING)
     and user C asks for a THUMBNAIL;
  3. everything runs to the end.
It prints, from the rows (the database's clock for createdAt/completedAt, the worker's for the
processingLogs events, both this machine's):
  - B's time from row insert to its stills (`thumbnailUrl` set: the `stills` or `queued` event);
  - how many of A's jobs were claimed after B's row appeared and before B's first claim;
  - B's time to COMPLETED against the median duration of one A job (claim to completion);
  - C's time to COMPLETED;
  - A's total time (first insert to last completion).
With --baseline REV, the same is measured first for that revision (built in a git worktree under the
work folder), so before and after come from one run on one machine. Nothing is asserted.
"""
import argparse, datetime, json, os, signal, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(command, **kwargs):
    return subprocess.run(command, check=True, **kwargs)


def psql(url, sql):
    return subprocess.run(["psql", url, "-Atqc", sql], capture_output=True, text=True, check=True).stdout.strip()


def build(source):
    sh(["swift", "build", "-c", "release", "--product", "media-worker"], cwd=source)
    return subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=source, check=True,
                          capture_output=True, text=True).stdout.strip() + "/media-worker"


def make_inputs(work, clips):
    def ffmpeg(*args):
        sh(["ffmpeg", "-nostdin", "-v", "error", "-y", *args])

    base = os.path.join(work, "a_base.mp4")
    if not os.path.exists(base):
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30:duration=30", "-f", "lavfi", "-i",
               "sine=frequency=440:sample_rate=48000:duration=30", "-c:v", "libx264", "-preset", "veryfast",
               "-crf", "20", "-g", "60", "-c:a", "aac", "-movflags", "+faststart", base)
    a = []
    for index in range(clips):
        clip = os.path.join(work, f"a_{index:02d}.mp4")
        if not os.path.exists(clip):
            ffmpeg("-i", base, "-c", "copy", "-metadata", f"title=trip clip {index}", clip)
        a.append(clip)
    b = os.path.join(work, "b_short.mp4")
    if not os.path.exists(b):
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30:duration=5", "-f", "lavfi", "-i",
               "sine=frequency=660:sample_rate=48000:duration=5", "-c:v", "libx264", "-preset", "veryfast",
               "-crf", "20", "-c:a", "aac", "-movflags", "+faststart", b)
    c = os.path.join(work, "c_clip.mp4")
    if not os.path.exists(c):
        ffmpeg("-f", "lavfi", "-i", "testsrc=size=1280x720:rate=30:duration=10", "-c:v", "libx264", "-preset",
               "veryfast", "-movflags", "+faststart", c)
    return a, b, c


def enqueue(binary, environment, path, kind, user):
    out = subprocess.run([binary, "enqueue", path, "--type", kind, "--user-id", str(user)], env=environment,
                         check=True, capture_output=True, text=True).stdout
    return int(out.strip())


def stamp(text):
    """An ISO 8601 timestamp (processingLogs' `at`, or PostgreSQL's text) as seconds since the epoch."""
    text = text.replace("Z", "").replace("T", " ")
    return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.timezone.utc).timestamp()


def measure(label, binary, work, pg_url, inputs):
    a_clips, b_clip, c_clip = inputs
    database = "burst_" + label.replace("-", "_")
    psql(pg_url, f"DROP DATABASE IF EXISTS {database}")
    psql(pg_url, f"CREATE DATABASE {database}")
    url = pg_url.replace("/postgres?", f"/{database}?")
    storage = os.path.join(work, f"storage-{label}")
    sh(["rm", "-rf", storage])
    os.makedirs(storage)
    environment = dict(os.environ, DATABASE_URL=url, MEDIA_STORAGE_URL="file://" + storage,
                       MEDIA_WORKER_LOG_LEVEL="warning", MEDIA_WORKER_TMPDIR=work)
    sh([binary, "migrate"], env=environment, stdout=subprocess.DEVNULL)
    a_ids = [enqueue(binary, environment, clip, "FULL_PROCESSING", 1) for clip in a_clips]
    daemon = subprocess.Popen([binary, "serve", "--concurrency", "2"], env=environment,
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, f"serve-{label}.log"), "w"))
    try:
        deadline = time.time() + 120
        while int(psql(url, "SELECT count(*) FROM video_processing WHERE status = 'PROCESSING'")) < 2:
            if time.time() > deadline:
                sys.exit("the daemon never ran two jobs at once")
            time.sleep(0.05)
        time.sleep(1)  # both slots well into their encodes
        b_id = enqueue(binary, environment, b_clip, "FULL_PROCESSING", 2)
        c_id = enqueue(binary, environment, c_clip, "THUMBNAIL", 3)
        deadline = time.time() + 1800
        while psql(url, "SELECT count(*) FROM video_processing WHERE status NOT IN ('COMPLETED', 'FAILED')") != "0":
            if time.time() > deadline:
                sys.exit("the jobs did not finish within 30 minutes")
            time.sleep(0.2)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=120)

    rows = {}
    for line in psql(url, """SELECT json_build_object('id', id, 'status', status, 'created', "createdAt",
            'completed', "completedAt", 'logs', "processingLogs") FROM video_processing""").splitlines():
        row = json.loads(line)
        rows[row["id"]] = row
    failed = [job for job, row in rows.items() if row["status"] != "COMPLETED"]
    if failed:
        sys.exit(f"{label}: jobs not completed: {failed}")

    def events(job, name):
        return [stamp(entry["at"]) for entry in rows[job]["logs"] if entry["event"] == name]

    b_created = stamp(rows[b_id]["created"])
    b_stills = min(events(b_id, "stills") + events(b_id, "queued"))
    b_claimed = min(events(b_id, "claimed"))
    a_jumped = sum(1 for job in a_ids if any(b_created < at < b_claimed for at in events(job, "claimed")))
    a_durations = [stamp(rows[job]["completed"]) - max(events(job, "claimed")) for job in a_ids]
    a_total = max(stamp(rows[job]["completed"]) for job in a_ids) - min(stamp(rows[job]["created"]) for job in a_ids)
    looks = [queued - max(at for at in events(job, "claimed") if at < queued)
             for job in a_ids + [b_id] for queued in events(job, "queued")]
    return {
        "first_look": statistics.median(looks) if looks else float("nan"),
        "b_stills": b_stills - b_created,
        "a_jumped": a_jumped,
        "b_completed": stamp(rows[b_id]["completed"]) - b_created,
        "a_job": statistics.median(a_durations),
        "c_completed": stamp(rows[c_id]["completed"]) - stamp(rows[c_id]["created"]),
        "a_total": a_total,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="a git revision to measure first, for before/after figures")
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--work", default=None)
    parser.add_argument("--tree", default=ROOT, help="the source tree to measure (default: this one)")
    options = parser.parse_args()
    work = options.work or tempfile.mkdtemp(prefix="media-worker-burst-")
    os.makedirs(work, exist_ok=True)

    binaries = []
    if options.baseline:
        tree = os.path.join(work, "baseline")
        if not os.path.exists(tree):
            sh(["git", "-C", ROOT, "worktree", "add", "--detach", tree, options.baseline])
        binaries.append((options.baseline[:10], build(tree)))
    binaries.append(("this tree" if options.tree == ROOT else options.tree, build(options.tree)))
    inputs = make_inputs(work, options.clips)

    pg = os.path.join(work, "pg")
    sh(["bash", os.path.join(ROOT, ".ci/postgres"), "stop", pg], stderr=subprocess.DEVNULL)
    exports = subprocess.run(["bash", os.path.join(ROOT, ".ci/postgres"), "start", pg], check=True,
                             capture_output=True, text=True).stdout
    pg_url = exports.split("'")[1]
    try:
        results = [(label, measure(f"run{index}", binary, work, pg_url, inputs))
                   for index, (label, binary) in enumerate(binaries)]
    finally:
        sh(["bash", os.path.join(ROOT, ".ci/postgres"), "stop", pg])

    print(f"\n{options.clips} FULL_PROCESSING 30 s 1080p clips from A, 2 encode slots, 2 cores\n")
    print("| figure | goal | " + " | ".join(label for label, _ in results) + " |")
    print("|---|---|" + "---|" * len(results))
    rows = [
        ("B: row insert → stills (s)", "≤ 1.5", "b_stills", "{:.2f}"),
        ("A's jobs claimed after B's row, before B", "0", "a_jumped", "{}"),
        ("B: row insert → COMPLETED (s)", "≤ one A job + its own", "b_completed", "{:.2f}"),
        ("one A job, claim → COMPLETED (median, s)", "", "a_job", "{:.2f}"),
        ("C (THUMBNAIL): row insert → COMPLETED (s)", "≤ 1.5", "c_completed", "{:.2f}"),
        ("A: first insert → last COMPLETED (s)", "within 5 % of before", "a_total", "{:.1f}"),
        ("a first look in the fast lane, claim → queued (median, s)", "", "first_look", "{:.2f}"),
    ]
    for name, goal, key, fmt in rows:
        print(f"| {name} | {goal} | " + " | ".join(fmt.format(result[key]) for _, result in results) + " |")


if __name__ == "__main__":
    main()
