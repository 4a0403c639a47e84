#!/usr/bin/env python3
"""Runs a test command with bounded output and a time limit, and says why when it hangs.

CI shows only so much of a run's output, and a run that goes silent or overruns its limit ends with
nothing to say why. This wrapper passes the command's output through line by line until
`--max-bytes`, then only lines that report failures (the whole output goes to `--log`); after
`--silence` minutes without a line, and once past `--minutes`, it prints the tests that began and
never ended and the state of every process the command started (threads, CPU, what each thread
waits in: a stopped or blocked test process shows here); past `--minutes` it then stops the
command's process group and exits 124, as `timeout` does.

Usage: python3 .ci/watch.py --minutes 25 [--silence 8] [--max-bytes 600000] [--log FILE] -- swift test
"""

import argparse
import collections
import os
import re
import signal
import subprocess
import sys
import threading
import time

STARTED = re.compile(r"Test (\S+?\(.*?\)) started\.")
ENDED = re.compile(r"Test (\S+?\(.*?\)) (?:passed|failed|skipped|recorded an issue)")
# What still passes once the output is over its budget: failures and the run's summary.
IMPORTANT = re.compile(r"✘|recorded an issue|error:|Fatal error|Test run with|watch:")
# Build progress lines: counted, never shown (hundreds of "[12/1700] Compiling …").
PROGRESS = re.compile(r"^\[\d+/\d+\] |^(Fetching|Fetched|Creating working copy|Working copy|Computing version)")


def read(path, binary=False):
    try:
        with open(path, "rb" if binary else "r") as f:
            return f.read()
    except OSError:
        return b"" if binary else ""


def descendants(root):
    """The pids of `root` and every process below it."""
    children = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = read(f"/proc/{entry}/stat")
            if stat:
                children[int(stat[stat.rfind(")") + 2:].split()[1])].append(int(entry))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def describe(pid):
    """One line on a process: state, threads by state and wait channel, CPU seconds, command."""
    stat = read(f"/proc/{pid}/stat")
    if not stat:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    waits = collections.Counter()
    for task in os.listdir(f"/proc/{pid}/task") if os.path.isdir(f"/proc/{pid}/task") else []:
        task_stat = read(f"/proc/{pid}/task/{task}/stat")
        if task_stat:
            state = task_stat[task_stat.rfind(")") + 2:].split()[0]
            waits[f"{state}:{read(f'/proc/{pid}/task/{task}/wchan') or '-'}"] += 1
    command = read(f"/proc/{pid}/cmdline", binary=True).replace(b"\0", b" ").decode(errors="replace").strip()
    threads = ", ".join(f"{count}×{wait}" for wait, count in waits.most_common(4))
    return f"{pid:>7} {fields[0]} cpu {cpu:7.1f} s  [{threads}]  {command[:140]}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, required=True, help="the time limit")
    parser.add_argument("--silence", type=float, default=8, help="minutes without output before a report")
    parser.add_argument("--max-bytes", type=int, default=600_000, help="output shown before only failures")
    parser.add_argument("--log", help="where the whole output goes")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    arguments = parser.parse_args()
    command = arguments.command[1:] if arguments.command[:1] == ["--"] else arguments.command

    running = {}
    lock = threading.Lock()
    state = {"shown": 0, "held": 0, "progress": 0, "last": time.monotonic()}
    log = open(arguments.log, "w") if arguments.log else None
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)

    def show(line):
        sys.stdout.write(line)
        sys.stdout.flush()
        state["shown"] += len(line.encode())

    def relay():
        for raw in child.stdout:
            line = raw.decode(errors="replace")
            if log:
                log.write(line)
            with lock:
                state["last"] = time.monotonic()
                if match := STARTED.search(line):
                    running[match.group(1)] = time.monotonic()
                elif match := ENDED.search(line):
                    running.pop(match.group(1), None)
            if PROGRESS.search(line):
                state["progress"] += 1
            elif state["shown"] < arguments.max_bytes or IMPORTANT.search(line):
                show(line)
            else:
                state["held"] += 1

    def report(why):
        now = time.monotonic()
        print(f"\nwatch: {why}; load {' '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)
        with lock:
            tests = sorted(running.items(), key=lambda item: item[1])
        for name, start in tests:
            print(f"watch: began {now - start:.0f} s ago, not ended: {name}", flush=True)
        print("watch: processes (pid, state, CPU, threads by state:wait channel, command):", flush=True)
        for pid in descendants(child.pid):
            if line := describe(pid):
                print(f"watch: {line}", flush=True)

    reader = threading.Thread(target=relay, daemon=True)
    reader.start()
    began = time.monotonic()
    silence_reported = False
    while child.poll() is None:
        time.sleep(1)
        now = time.monotonic()
        if not silence_reported and now - state["last"] > arguments.silence * 60:
            silence_reported = True
            report(f"no output for {arguments.silence:g} minutes")
        if now - began > arguments.minutes * 60:
            report(f"`{' '.join(command)}` overran {arguments.minutes:g} minutes")
            os.killpg(child.pid, signal.SIGTERM)
            time.sleep(10)
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            child.wait()
            return 124
    reader.join(timeout=30)
    print(f"watch: {state['progress']} build progress lines and {state['held']} lines over "
          f"{arguments.max_bytes} bytes not shown{' (all in ' + arguments.log + ')' if log else ''}", flush=True)
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
