#!/usr/bin/env python3
"""Storage that tells the truth, under chaos: does what the rows say match what storage holds?

Usage: python3 .ci/chaos.py [--binary .build/debug/media-worker] [--jobs 12] [--seconds 60]
                            [--seed 1] [--keep DIR]

Starts a throwaway PostgreSQL (.ci/postgres, its own port, so it can be restarted), moto's S3
server (Tests/Scripts/s3-test-server.py) and three `serve` workers on them. The third reaches the
database through a TCP proxy this script can cut, silently (packets dropped) or loudly (every
connection reset), while its storage keeps working. It enqueues --jobs jobs (stills, compressions,
full processing, a long video in pieces, and a group of forwards of one video) and, for --seconds,
at random (--seed): freezes a worker (SIGSTOP, then SIGCONT), kills one (SIGKILL, then starts it
again), restarts the database, cuts the proxy, soft-deletes an upload as the app does, and
reprocesses a job (`reprocess --force`). Then it lets everything settle and checks:

- every row that names outputs: each object exists, and its bytes, SHA-256, dimensions and duration
  (ffprobe) are what the row's outputMetadata says (mismatches: 0);
- after the erasure window, no object of a deleted upload is stored (unless a live forward shares it);
- after one `storage audit --sweep` with no grace, `storage audit` finds 0 unreferenced objects and
  0 missing ones;
- the bytes a group of forwards of one video stores, against what copies would store.

Prints the figures and a JSON line; exits 1 when any check fails.
"""
import argparse, hashlib, json, os, random, shutil, signal, socket, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = [
    ("portrait_rot90.mp4", "FULL_PROCESSING"), ("no_audio.mp4", "THUMBNAIL"), ("short_720p.mp4", "COMPRESSION"),
    ("landscape_1080p_h264_aac.mp4", "FULL_PROCESSING"), ("portrait_hevc_rot90.mov", "COMPRESSION"),
    ("odd_size_854x481.mp4", "PREVIEW"), ("theora_vorbis.ogg", "FULL_PROCESSING"), ("mpeg4_mp3.avi", "COMPRESSION"),
]
LONG = ("long_hevc_720p_20s.mp4", "COMPRESSION")
FORWARDED = ("vp9_opus.webm", "FULL_PROCESSING")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proxy:
    """TCP to the database's Unix socket; `cut` drops bytes silently, `refuse` resets connections."""

    def __init__(self, socket_path):
        self.socket_path, self.mode, self.lock, self.conns = socket_path, "open", threading.Lock(), []
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def set(self, mode):
        with self.lock:
            self.mode = mode
            doomed = list(self.conns) if mode == "refuse" else []
            if doomed:
                self.conns = []
        for c in doomed:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def accept(self):
        while True:
            client, _ = self.listener.accept()
            with self.lock:
                refusing = self.mode == "refuse"
            if refusing:
                client.close()
                continue
            server = socket.socket(socket.AF_UNIX)
            try:
                server.connect(self.socket_path)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    def pump(self, source, target):
        try:
            while True:
                with self.lock:
                    cut = self.mode == "cut"
                if cut:
                    time.sleep(0.02)
                    continue
                source.settimeout(0.05)
                try:
                    data = source.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    break
                with self.lock:
                    cut = self.mode == "cut"
                while cut:  # bytes read just before a cut wait for the mend
                    time.sleep(0.02)
                    with self.lock:
                        cut = self.mode == "cut"
                target.sendall(data)
        except OSError:
            pass
        for s in (source, target):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Cluster:
    def __init__(self, folder):
        self.folder, self.port = folder, free_port()
        out = subprocess.run(["bash", os.path.join(ROOT, ".ci/postgres"), "start", folder], check=True,
                             capture_output=True, text=True, env={**os.environ, "PG_PORT": str(self.port)}).stdout
        self.admin = out.split("'")[1]
        self.url = self.admin.replace("/postgres?", "/chaos?")
        subprocess.run(["psql", self.admin, "-qc", "CREATE DATABASE chaos"], check=True)
        self.socket = f"{folder}/.s.PGSQL.{self.port}"

    def restart(self):
        binary = sorted(os.listdir("/usr/lib/postgresql"))[-1]
        command = [f"/usr/lib/postgresql/{binary}/bin/pg_ctl", "-D", f"{self.folder}/data", "-l", f"{self.folder}/log",
                   "-m", "fast", "-w", "restart"]
        if os.getuid() == 0:
            command = ["runuser", "-u", "postgres", "--"] + command
        # No pipes: the new server would hold them open for ever.
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        subprocess.run(["bash", os.path.join(ROOT, ".ci/postgres"), "stop", self.folder], capture_output=True)

    def query(self, sql):
        # Fields apart by the unit separator: JSON columns hold "|".
        out = subprocess.run(["psql", self.url, "-AtXq", "-F", "\x1f", "-c", sql], capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(out.stderr)
        return [line.split("\x1f") for line in out.stdout.splitlines() if line]


class Worker:
    def __init__(self, name, binary, environment, folder):
        self.name, self.binary, self.environment, self.folder = name, binary, environment, folder
        self.process, self.frozen = None, False

    def start(self):
        log = open(os.path.join(self.folder, f"{self.name}.log"), "a")
        self.process = subprocess.Popen([self.binary, "serve"], env=self.environment, stdout=log, stderr=log)
        self.frozen = False

    def alive(self):
        return self.process is not None and self.process.poll() is None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build/debug/media-worker"))
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", help="keep logs and storage listings in this folder")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    folder = args.keep or tempfile.mkdtemp(prefix="media-worker-chaos-")
    os.makedirs(folder, exist_ok=True)
    os.chmod(folder, 0o755)  # the postgres user runs the cluster in a folder inside
    cluster = Cluster(os.path.join(folder, "pg"))
    s3_log = open(os.path.join(folder, "s3.log"), "w")
    s3 = subprocess.Popen([sys.executable, os.path.join(ROOT, "Tests/Scripts/s3-test-server.py")], stdout=subprocess.PIPE,
                          stderr=s3_log, text=True)
    workers = []
    try:
        s3_info = json.loads(s3.stdout.readline())
        prefix = f"chaos-{args.seed}-{int(time.time())}"
        base = {
            "PATH": "/usr/bin:/bin", "DATABASE_URL": cluster.url,
            "MEDIA_STORAGE_URL": f"s3://{s3_info['bucket']}/{prefix}?endpoint={s3_info['endpoint']}&region={s3_info['region']}",
            "AWS_ACCESS_KEY_ID": s3_info["accessKeyId"], "AWS_SECRET_ACCESS_KEY": s3_info["secretAccessKey"],
            "MEDIA_WORKER_STALE_AFTER": "4", "MEDIA_WORKER_POLL_INTERVAL": "0.5", "MEDIA_WORKER_RETRY_BASE": "1",
            "MEDIA_WORKER_MAX_ATTEMPTS": "6", "MEDIA_WORKER_CONCURRENCY": "1", "MEDIA_WORKER_ERASE_AFTER": "5",
            "MEDIA_WORKER_SWEEP_GRACE": "5", "MEDIA_WORKER_PIECE_SECONDS": "4", "MEDIA_WORKER_PIECES_AFTER": "10",
            "MEDIA_WORKER_LOG_LEVEL": "info", "MEDIA_WORKER_SHUTDOWN_GRACE": "5",
        }
        run = lambda *a, extra=None, check=True: subprocess.run(
            [args.binary, *a], env={**base, **(extra or {})}, capture_output=True, text=True, check=check)
        run("migrate")
        import boto3
        bucket = boto3.client("s3", endpoint_url=s3_info["endpoint"], region_name=s3_info["region"],
                              aws_access_key_id=s3_info["accessKeyId"], aws_secret_access_key=s3_info["secretAccessKey"])

        jobs, forwards = [], []
        plan = [LONG] + [FIXTURES[i % len(FIXTURES)] for i in range(max(0, args.jobs - 5))]
        for index, (fixture, kind) in enumerate(plan):
            out = run("enqueue", os.path.join(ROOT, "Fixtures", fixture), "--type", kind, "--user-id", str(1 + index % 5))
            jobs.append(int(out.stdout.strip()))
        for user in range(4):
            out = run("enqueue", os.path.join(ROOT, "Fixtures", FORWARDED[0]), "--type", FORWARDED[1],
                      "--user-id", str(10 + user))
            forwards.append(int(out.stdout.strip()))
        # The forwards are left alone by deletes and reprocesses: they measure what sharing stores.
        singles = list(jobs)
        jobs += forwards

        proxy = Proxy(cluster.socket)
        proxied = {**base, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{proxy.port}/chaos?connect_timeout=2"}
        for name, environment in (("a", base), ("b", base), ("c", proxied)):
            worker_folder = os.path.join(folder, name)
            os.makedirs(worker_folder, exist_ok=True)
            workers.append(Worker(name, args.binary, {**environment, "MEDIA_WORKER_TMPDIR": worker_folder}, folder))
        for worker in workers:
            worker.start()

        counts = {key: 0 for key in ("freeze", "kill", "database restart", "cut", "refuse", "delete", "reprocess")}
        deleted, reprocessing = set(), []
        deadline = time.time() + args.seconds
        while time.time() < deadline:
            time.sleep(rng.uniform(1.5, 4))
            action = rng.choice(list(counts))
            worker = rng.choice(workers)
            if action == "freeze" and worker.alive() and not worker.frozen:
                worker.process.send_signal(signal.SIGSTOP)
                worker.frozen = True
                threading.Timer(rng.uniform(4, 12), lambda w=worker: (w.process.send_signal(signal.SIGCONT),
                                                                        setattr(w, "frozen", False))).start()
            elif action == "kill" and worker.alive():
                worker.process.send_signal(signal.SIGCONT)
                worker.process.kill()
                worker.process.wait()
                threading.Timer(rng.uniform(1, 5), worker.start).start()
            elif action == "database restart":
                cluster.restart()
            elif action in ("cut", "refuse"):
                proxy.set(action)
                threading.Timer(rng.uniform(5, 12), lambda: proxy.set("open")).start()
            elif action == "delete":
                victim = rng.choice(singles)
                cluster.query(f'UPDATE file_upload SET "deletedAt" = now() AT TIME ZONE \'utc\' WHERE id = '
                              f'(SELECT "fileUploadId" FROM video_processing WHERE id = {victim})')
                deleted.add(victim)
            elif action == "reprocess":
                victim = rng.choice([j for j in singles if j not in deleted] or singles)
                reprocessing.append(subprocess.Popen(
                    [args.binary, "reprocess", str(victim), "--force"], env={**base, "MEDIA_WORKER_LOG_LEVEL": "warning"},
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            else:
                continue
            counts[action] += 1

        # Settle: everything given back, every worker running, every job ended.
        time.sleep(13)
        proxy.set("open")
        for worker in workers:
            if worker.alive():
                worker.process.send_signal(signal.SIGCONT)
            else:
                worker.start()
        for process in reprocessing:
            process.wait(timeout=600)
        settled_at = time.time() + 600
        while time.time() < settled_at:
            busy = int(cluster.query("SELECT count(*) FROM video_processing WHERE status IN ('PENDING', 'PROCESSING')")[0][0])
            if busy == 0:
                break
            time.sleep(1)
        # The erasure window and two sweeps.
        time.sleep(5 + 2 * 3 + 2)
        for worker in workers:
            worker.process.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.process.wait(timeout=120)

        states = dict((s, int(n)) for s, n in cluster.query(
            "SELECT status::text, count(*) FROM video_processing GROUP BY 1"))
        rows = cluster.query("""
            SELECT vp.id, vp."outputStorageKeys", COALESCE(vp."outputMetadata"::text, '{}'),
                   fu."deletedAt" IS NOT NULL
            FROM video_processing vp LEFT JOIN file_upload fu ON fu.id = vp."fileUploadId"
            WHERE vp."outputStorageKeys" LIKE '{%' AND vp."outputStorageKeys" <> '{}'""")
        # A live upload's metadata.variants names objects too (a popular video's AV1 variant).
        for upload, variants in cluster.query("""
                SELECT id, "metadata"::jsonb -> 'variants' FROM file_upload
                WHERE "deletedAt" IS NULL AND jsonb_typeof("metadata"::jsonb -> 'variants') = 'object'"""):
            entries = json.loads(variants)
            rows.append((f"upload {upload}", json.dumps({r: e["key"] for r, e in entries.items()}), variants, "f"))
        listed = {}
        for page in bucket.get_paginator("list_objects_v2").paginate(Bucket=s3_info["bucket"], Prefix=f"{prefix}/media-worker/"):
            for entry in page.get("Contents", []):
                listed[entry["Key"][len(prefix) + 1:]] = entry["Size"]

        mismatches, checked, live_keys = [], 0, set()
        probe_dir = tempfile.mkdtemp(dir=folder)
        for job, keys_text, metadata_text, upload_deleted in rows:
            keys, metadata = json.loads(keys_text), json.loads(metadata_text)
            if upload_deleted == "t":
                mismatches.append(f"job {job}: its upload was deleted, yet its row still names {sorted(keys)}")
                continue
            checked_keys = set()
            live_keys.update(keys.values())
            for role, key in keys.items():
                if key in checked_keys:
                    continue
                checked_keys.add(key)
                checked += 1
                entry = metadata.get(role, {})
                if key not in listed:
                    mismatches.append(f"job {job} {role}: {key} is not stored")
                    continue
                path = os.path.join(probe_dir, "object")
                bucket.download_file(s3_info["bucket"], f"{prefix}/{key}", path)
                data = open(path, "rb").read()
                if len(data) != entry.get("bytes") or hashlib.sha256(data).hexdigest() != entry.get("sha256"):
                    mismatches.append(f"job {job} {role}: {len(data)} B stored, row says {entry.get('bytes')} B "
                                      f"(sha256 {'same' if hashlib.sha256(data).hexdigest() == entry.get('sha256') else 'differs'})")
                    continue
                probe = json.loads(subprocess.run(
                    ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", path],
                    capture_output=True, text=True).stdout or "{}")
                picture = next((s for s in probe.get("streams", []) if s.get("codec_type") == "video"), {})
                size = (picture.get("width"), picture.get("height"))
                rotation = next((abs(int(d.get("rotation", 0))) for d in picture.get("side_data_list", [])
                                 if "rotation" in d), abs(int(picture.get("tags", {}).get("rotate", 0))))
                if rotation % 180 == 90:  # a copy keeps the upload's rotation: shown turned
                    size = (size[1], size[0])
                if size != (entry.get("width"), entry.get("height")):
                    mismatches.append(f"job {job} {role}: {picture.get('width')}x{picture.get('height')} stored, "
                                      f"row says {entry.get('width')}x{entry.get('height')}")
                duration = float(probe.get("format", {}).get("duration", 0) or 0)
                if entry.get("durationMs") and abs(duration * 1000 - entry["durationMs"]) > 100:
                    mismatches.append(f"job {job} {role}: {duration:.3f} s stored, row says {entry['durationMs']} ms")
        shutil.rmtree(probe_dir, ignore_errors=True)

        deleted_jobs = {int(r[0]) for r in cluster.query(
            'SELECT vp.id FROM video_processing vp JOIN file_upload fu ON fu.id = vp."fileUploadId" '
            'WHERE fu."deletedAt" IS NOT NULL')}
        erased_left = sorted(k for k in listed if k not in live_keys
                             and int(k.split("/")[2]) in deleted_jobs)

        run("storage", "audit", "--sweep", extra={"MEDIA_WORKER_SWEEP_GRACE": "0"}, check=False)
        audit = json.loads(run("storage", "audit", "--json", check=False).stdout or "{}")
        unreferenced = [o for o in audit.get("objects", []) if o["verdict"] != "referenced"]
        missing = audit.get("missing", [])
        after = {}
        for page in bucket.get_paginator("list_objects_v2").paginate(Bucket=s3_info["bucket"], Prefix=f"{prefix}/media-worker/"):
            for entry in page.get("Contents", []):
                after[entry["Key"][len(prefix) + 1:]] = entry["Size"]

        forward_rows = cluster.query(
            'SELECT vp."outputStorageKeys" FROM video_processing vp JOIN file_upload fu ON fu.id = vp."fileUploadId" '
            f'WHERE vp.id IN ({",".join(map(str, forwards))}) AND fu."deletedAt" IS NULL AND vp.status = \'COMPLETED\'')
        forward_keys = [set(json.loads(r[0]).values()) for r in forward_rows if r[0].startswith("{")]
        forward_objects = set().union(*forward_keys) if forward_keys else set()
        forward_stored = sum(after.get(k, 0) for k in forward_objects)
        forward_copies = sum(sum(after.get(k, 0) for k in keys) for keys in forward_keys)

        figures = {
            "jobs": len(jobs), "seconds": args.seconds, "seed": args.seed, "chaos": counts, "states": states,
            "rowsNamingOutputs": len(rows), "objectsChecked": checked, "mismatches": len(mismatches),
            "deletedUploads": len(deleted_jobs), "objectsOfDeletedUploadsLeft": len(erased_left),
            "unreferencedAfterSweep": len(unreferenced), "missingAfterSweep": len(missing),
            "objectsStored": len(after), "bytesStored": sum(after.values()),
            "forwards": len(forward_keys), "forwardObjects": len(forward_objects),
            "forwardBytesStored": forward_stored, "forwardBytesIfCopied": forward_copies,
        }
        print(f"chaos: {len(jobs)} jobs, {args.seconds:.0f} s, seed {args.seed}: "
              + ", ".join(f"{n} {k}" for k, n in counts.items()))
        print(f"  final states: {states}")
        print(f"  {checked} objects named by {len(rows)} rows checked (bytes, SHA-256, ffprobe size and duration): "
              f"{len(mismatches)} mismatches")
        for line in mismatches[:20]:
            print(f"    {line}")
        print(f"  {len(deleted_jobs)} jobs of deleted uploads: {len(erased_left)} of their objects left after the erasure window")
        for key in erased_left[:10]:
            print(f"    {key}")
        print(f"  after one sweep: {len(unreferenced)} unreferenced objects, {len(missing)} missing")
        for entry in (unreferenced + missing)[:10]:
            print(f"    {entry}")
        print(f"  {len(forward_keys)} live forwards of one video store {len(forward_objects)} objects, "
              f"{forward_stored} B ({forward_copies} B if each had its own copy)")
        print(json.dumps(figures))
        failed = mismatches or erased_left or unreferenced or missing or states.get("PENDING") or states.get("PROCESSING")
        return 1 if failed else 0
    finally:
        for worker in workers:
            if worker.process and worker.process.poll() is None:
                worker.process.send_signal(signal.SIGCONT)
                worker.process.kill()
        s3.kill()
        cluster.stop()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
