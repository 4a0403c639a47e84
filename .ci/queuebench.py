#!/usr/bin/env python3
"""media-worker's queue benchmark: pickup latency and claims per second, direct and through PgBouncer.

Usage: python3 .ci/queuebench.py [--jobs N] [--pickups N] [--work DIR]

Starts a throwaway PostgreSQL (.ci/postgres) and PgBouncer in transaction mode in front of it, builds
the release binary, and measures, with 8 idle `serve` daemons (one slot each) on local storage:
- pickup latency: one job inserted at a time, as the app does (INSERT, then the trigger's
  pg_notify), until a worker has claimed it: the job's `startedAt` (clock_timestamp() in the claim)
  minus its `createdAt` (the inserting transaction's start), both taken by the database's clock;
- claims per second: N trivial jobs (METADATA of a 1 s clip) queued at once, from the first
  `startedAt` to the last `completedAt`, then the same with 1 million finished rows in the table;
- the connections one daemon holds (pg_stat_activity, by its application_name) with 8 slots busy;
- the claim statement's own cost with 1 million finished rows and 1,000 runnable jobs of 100
  uploaders: the plans of a daemon's real claims, as PostgreSQL's auto_explain logs them (ANALYZE,
  BUFFERS), and the pickup latency at that table size (`--claim-cost` measures only this).
Prints a table; nothing here is asserted (figures vary with the machine).
"""
import argparse, json, os, shutil, signal, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "Fixtures", "no_audio.mp4")


def psql(url, sql):
    return subprocess.run(["psql", url, "-Atqc", sql], capture_output=True, text=True, check=True).stdout.strip()


def as_postgres(command):
    return ["runuser", "-u", "postgres", "--", *command] if os.getuid() == 0 else command


def start_pgbouncer(work, socket_dir, port):
    directory = os.path.join(work, "pgbouncer")
    os.makedirs(directory, exist_ok=True)
    listen = 6439
    with open(os.path.join(directory, "pgbouncer.ini"), "w") as config:
        config.write(f"""[databases]
* = host={socket_dir} port={port} user=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = any
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
pidfile = {directory}/pgbouncer.pid
logfile = {directory}/pgbouncer.log
""")
    if os.getuid() == 0:
        shutil.chown(directory, "postgres")
    subprocess.run(as_postgres(["/usr/sbin/pgbouncer", "-d", os.path.join(directory, "pgbouncer.ini")]), check=True)
    time.sleep(0.5)
    return listen, os.path.join(directory, "pgbouncer.pid")


class Daemons:
    """`count` serve processes with one slot each, started with `environment`."""

    def __init__(self, binary, environment, count, concurrency=1):
        self.processes = [subprocess.Popen([binary, "serve", "--concurrency", str(concurrency)], env=environment,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                          for _ in range(count)]
        time.sleep(2)  # ready: migrated database, storage checked

    def stop(self):
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            process.wait(timeout=60)


def enqueue_one(url, upload_id):
    """As the app does: one INSERT (the migrate trigger notifies)."""
    return int(psql(url, f"""INSERT INTO video_processing ("userId", "fileUploadId", "processingType",
        "inputStorageKey", "originalFileName", "inputMimeType", "inputFileSize")
        SELECT "userId", "fileUploadId", "processingType", "inputStorageKey", "originalFileName",
            "inputMimeType", "inputFileSize" FROM video_processing WHERE id = {upload_id} RETURNING id"""))


def pickup(direct_url, binary, environment, count):
    """Median and p99 pickup latency in ms over `count` jobs inserted one at a time."""
    daemons = Daemons(binary, environment, 8)
    try:
        template = int(psql(direct_url, "SELECT min(id) FROM video_processing"))
        ids = []
        for _ in range(count):
            ids.append(enqueue_one(direct_url, template))
            time.sleep(0.15)
        deadline = time.time() + 60
        while time.time() < deadline and psql(
                direct_url, f"SELECT count(*) FROM video_processing WHERE id = ANY(ARRAY{ids}) "
                "AND \"startedAt\" IS NULL") != "0":
            time.sleep(0.2)
        latencies = [float(v) for v in psql(direct_url, f"""SELECT extract(epoch FROM "startedAt" - "createdAt") * 1000
            FROM video_processing WHERE id = ANY(ARRAY{ids}) AND "startedAt" IS NOT NULL""").split()]
    finally:
        daemons.stop()
    latencies.sort()
    return statistics.median(latencies), latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]


def throughput(direct_url, binary, environment, count):
    """Jobs per second for `count` trivial jobs queued at once, 8 daemons of one slot."""
    template = int(psql(direct_url, "SELECT min(id) FROM video_processing"))
    first = int(psql(direct_url, f"""INSERT INTO video_processing ("userId", "fileUploadId", "processingType",
        "inputStorageKey", "originalFileName", "inputMimeType", "inputFileSize")
        SELECT "userId", "fileUploadId", "processingType", "inputStorageKey", "originalFileName",
            "inputMimeType", "inputFileSize" FROM video_processing, generate_series(1, {count})
        WHERE id = {template} RETURNING id""").split()[0])
    daemons = Daemons(binary, environment, 8)
    try:
        deadline = time.time() + 600
        while time.time() < deadline and psql(
                direct_url, f"SELECT count(*) FROM video_processing WHERE id >= {first} "
                "AND \"status\" IN ('PENDING', 'PROCESSING')") != "0":
            time.sleep(0.5)
    finally:
        daemons.stop()
    seconds, done, claims = psql(direct_url, f"""SELECT extract(epoch FROM max("completedAt") - min("startedAt")),
        count(*) FILTER (WHERE "status" = 'COMPLETED'),
        sum((SELECT count(*) FROM json_array_elements("processingLogs") e WHERE e->>'event' = 'claimed'))
        FROM video_processing WHERE id >= {first}""").split("|")
    return int(done) / float(seconds), int(done), int(claims)


def connections(direct_url, binary, environment):
    """Connections one daemon with 8 slots holds while its slots are busy."""
    template = int(psql(direct_url, "SELECT min(id) FROM video_processing"))
    psql(direct_url, f"""INSERT INTO video_processing ("userId", "fileUploadId", "processingType",
        "inputStorageKey", "originalFileName", "inputMimeType", "inputFileSize")
        SELECT "userId", "fileUploadId", 'COMPRESSION', "inputStorageKey", "originalFileName",
            "inputMimeType", "inputFileSize" FROM video_processing, generate_series(1, 16) WHERE id = {template}""")
    daemon = subprocess.Popen([binary, "serve", "--until-idle", "--concurrency", "8"], env=environment,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    most = 0
    while daemon.poll() is None:
        most = max(most, int(psql(direct_url, "SELECT count(*) FROM pg_stat_activity WHERE application_name "
                                  f"LIKE 'media-worker % {daemon.pid} %'")))
        time.sleep(0.05)
    return most


def add_finished_rows(direct):
    psql(direct, """INSERT INTO video_processing ("processingType", "status", "inputStorageKey",
        "originalFileName", "inputMimeType", "inputFileSize", "createdAt", "updatedAt", "startedAt",
        "completedAt", "progress")
        SELECT 'METADATA', 'COMPLETED', 'k/' || g, 'v.mp4', 'video/mp4', 1, t, t, t, t, 100
        FROM (SELECT g, (now() AT TIME ZONE 'utc') - g * interval '5 seconds' AS t
              FROM generate_series(1, 1000000) g) s""")
    psql(direct, "VACUUM ANALYZE video_processing")


def claim_cost(direct, binary, environment, log_path, claims=100):
    """Execution time and buffers of a daemon's real claims with 1,000 runnable jobs of 100 uploaders
    queued (and whatever the table holds besides), from auto_explain's JSON plans in the server log."""
    psql(direct, """INSERT INTO "user" ("id") SELECT g FROM generate_series(1000, 1099) g ON CONFLICT DO NOTHING""")
    template = int(psql(direct, "SELECT min(id) FROM video_processing WHERE \"fileUploadId\" IS NOT NULL"))
    first = int(psql(direct, f"""INSERT INTO video_processing ("userId", "fileUploadId", "processingType",
        "inputStorageKey", "originalFileName", "inputMimeType", "inputFileSize", "createdAt")
        SELECT 1000 + g % 100, "fileUploadId", "processingType", "inputStorageKey", "originalFileName",
            "inputMimeType", "inputFileSize", (now() AT TIME ZONE 'utc') - g * interval '1 second'
        FROM video_processing, generate_series(1, 1000) g WHERE id = {template} RETURNING id""").split()[0])
    psql(direct, "ANALYZE video_processing")
    for setting in ["session_preload_libraries = 'auto_explain'", "auto_explain.log_min_duration = 0",
                    "auto_explain.log_analyze = on", "auto_explain.log_buffers = on",
                    "auto_explain.log_format = json"]:
        psql(direct, f"ALTER DATABASE queue SET {setting}")
    start = os.path.getsize(log_path)
    daemon = subprocess.Popen([binary, "serve", "--concurrency", "1"], env=environment,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and int(psql(direct, f"""SELECT count(*) FROM video_processing
                WHERE id >= {first} AND "status" <> 'PENDING'""")) < claims:
            time.sleep(0.2)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
        psql(direct, "ALTER DATABASE queue RESET ALL")
    with open(log_path, errors="replace") as log:
        log.seek(start)
        text = log.read()
    durations, buffers = [], []
    decoder = json.JSONDecoder()
    for piece in text.split("duration: ")[1:]:
        milliseconds, _, rest = piece.partition(" ms")
        if "plan:" not in rest[:20]:
            continue
        try:
            plan, _ = decoder.raw_decode(rest.split("plan:", 1)[1].lstrip())
        except ValueError:
            continue
        if "'event', 'claimed'" in plan.get("Query Text", ""):  # the claim, whatever its shape
            durations.append(float(milliseconds))
            buffers.append(plan["Plan"].get("Shared Hit Blocks", 0) + plan["Plan"].get("Shared Read Blocks", 0))
    return len(durations), durations, buffers


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=400, help="trivial jobs per throughput run")
    parser.add_argument("--pickups", type=int, default=100, help="jobs inserted one at a time per latency run")
    parser.add_argument("--work", default=None)
    parser.add_argument("--claim-cost", action="store_true", help="only the claim's cost at a million rows")
    parser.add_argument("--binary", help="a media-worker binary to measure (default: this tree's release build)")
    options = parser.parse_args()
    work = options.work or tempfile.mkdtemp(prefix="media-worker-queuebench-")
    os.makedirs(work, exist_ok=True)
    binary = options.binary
    if not binary:
        subprocess.run(["swift", "build", "-c", "release", "--product", "media-worker"], cwd=ROOT, check=True)
        binary = os.path.join(subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT,
                                             capture_output=True, text=True, check=True).stdout.strip(), "media-worker")
    pg = os.path.join(work, "pg")
    shutil.rmtree(pg, ignore_errors=True)
    url = subprocess.run(["bash", os.path.join(ROOT, ".ci/postgres"), "start", pg], capture_output=True, text=True,
                         check=True).stdout.split("'")[1]
    pid_file = None
    try:
        psql(url, "CREATE DATABASE queue")
        direct = url.replace("/postgres?", "/queue?")
        bouncer_port, pid_file = start_pgbouncer(work, pg, 5439)
        pooled = f"postgresql://postgres@127.0.0.1:{bouncer_port}/queue"
        storage = os.path.join(work, "storage")
        os.makedirs(storage, exist_ok=True)
        base = dict(os.environ, MEDIA_STORAGE_URL="file://" + storage, MEDIA_WORKER_LOG_LEVEL="error",
                    MEDIA_WORKER_TMPDIR=work, MEDIA_WORKER_REUSE="off", MEDIA_WORKER_RETRY_BASE="0")
        routes = {
            "direct (LISTEN)": dict(base, DATABASE_URL=direct),
            "PgBouncer, polling every 1 s": dict(base, DATABASE_URL=pooled, MEDIA_WORKER_POOL_MODE="transaction"),
            "PgBouncer + direct LISTEN_URL": dict(base, DATABASE_URL=pooled, MEDIA_WORKER_POOL_MODE="transaction",
                                                  MEDIA_WORKER_LISTEN_URL=direct),
        }
        subprocess.run([binary, "migrate"], env=routes["direct (LISTEN)"], check=True, capture_output=True)
        subprocess.run([binary, "enqueue", FIXTURE, "--type", "METADATA"], env=routes["direct (LISTEN)"], check=True,
                       capture_output=True)
        if options.claim_cost:
            add_finished_rows(direct)
            p50, p99 = pickup(direct, binary, routes["direct (LISTEN)"], options.pickups)
            print(f"\npickup latency with 1 million finished rows, direct: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
            count, durations, buffers = claim_cost(direct, binary, routes["direct (LISTEN)"], os.path.join(pg, "log"))
            durations.sort()
            print(f"claim statement with 1,000 runnable jobs of 100 uploaders and 1 million finished rows "
                  f"({count} claims, auto_explain): p50 {statistics.median(durations):.2f} ms, "
                  f"p99 {durations[int(len(durations) * 0.99)]:.2f} ms, buffers p50 {statistics.median(buffers):.0f}")
            return
        print("\n| pickup latency, 8 idle workers (insert → claimed, database clock) | p50 ms | p99 ms |\n|---|---|---|")
        for name, environment in routes.items():
            p50, p99 = pickup(direct, binary, environment, options.pickups)
            print(f"| {name} | {p50:.1f} | {p99:.1f} |", flush=True)
        print(f"\n| {options.jobs} trivial jobs (METADATA of a 1 s clip), 8 workers × 1 slot | jobs/s | "
              "completed | claims |\n|---|---|---|---|")
        for name, environment in list(routes.items())[:2]:
            rate, done, claims = throughput(direct, binary, environment, options.jobs)
            print(f"| {name} | {rate:.1f} | {done} | {claims} |", flush=True)
        add_finished_rows(direct)
        for name, environment in list(routes.items())[:2]:
            rate, done, claims = throughput(direct, binary, environment, options.jobs)
            print(f"| {name}, 1 million finished rows in the table | {rate:.1f} | {done} | {claims} |", flush=True)
        most = connections(direct, binary, routes["direct (LISTEN)"])
        print(f"\nconnections held by one daemon with 8 slots busy: {most} (MEDIA_WORKER_MAX_CONNECTIONS=4)")
        count, durations, buffers = claim_cost(direct, binary, routes["direct (LISTEN)"], os.path.join(pg, "log"))
        durations.sort()
        print(f"claim statement with 1,000 runnable jobs of 100 uploaders, 1 million finished rows ({count} claims, "
              f"auto_explain): p50 {statistics.median(durations):.2f} ms, buffers p50 {statistics.median(buffers):.0f}")
    finally:
        if pid_file and os.path.exists(pid_file):
            os.kill(int(open(pid_file).read().strip()), signal.SIGTERM)
        subprocess.run(["bash", os.path.join(ROOT, ".ci/postgres"), "stop", pg], capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
