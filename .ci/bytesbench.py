#!/usr/bin/env python3
"""Bytes per picture: what media-worker's outputs cost and look like, per profile and codec.

Usage: python3 .ci/bytesbench.py [--binary .build/release/media-worker] [--profiles MEDIUM,LOW]
                                 [--cache ~/.cache/media-worker-corpus] [--fixtures] [--budget 0.6]

For each input of the real-world corpus (`.ci/corpus.py` fetches it) and, with --fixtures, the
fixture videos that media-worker converts, and for each profile, runs `media-worker process
--type COMPRESSION` twice (without and with `--variant always`) and prints per output: bytes,
SSIM (all planes, `ffmpeg`'s ssim filter against the source scaled to the output's size), the
path each stream took, and CPU seconds (the variant's is the difference between the two runs).
With --budget F, each converted input is run once more with `--max-bytes` set to F times its
H.264 output (so the budget binds) and the output's share of the budget is printed.
Then totals: the variant's bytes and CPU against H.264's where both were encoded, how many
H.264 outputs are bigger than their upload, and how many budgets landed within 90-100 %.
"""
import argparse, glob, json, os, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".ci"))
import corpus  # noqa: E402


def process(binary, path, out, profile, variant, max_bytes=None):
    """Runs `process`; returns (report or None, CPU seconds)."""
    command = [binary, "process", path, "--out", out, "--type", "COMPRESSION", "--profile", profile,
               "--variant", variant, "--json"] + (["--max-bytes", str(max_bytes)] if max_bytes else [])
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    stdout = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    cpu = usage.ru_utime + usage.ru_stime
    if status != 0:
        return None, cpu
    return json.loads(stdout), cpu


def ssim(output, source):
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height", "-of", "csv=p=0", output], capture_output=True, text=True)
    width, height = probe.stdout.strip().split(",")[:2]
    scored = subprocess.run(
        ["ffmpeg", "-nostdin", "-i", output, "-i", source, "-lavfi",
         f"[1:v]scale={width}:{height}:flags=bicubic,format=yuv420p[r];[0:v]format=yuv420p[o];[o][r]ssim",
         "-f", "null", "-"], capture_output=True, text=True)
    line = next((l for l in scored.stderr.splitlines() if "SSIM Y:" in l), None)
    return float(line.split("All:")[1].split()[0]) if line else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_binary = os.path.join(ROOT, ".build/release/media-worker")
    if not os.path.exists(default_binary):
        default_binary = os.path.join(ROOT, ".build/debug/media-worker")
    parser.add_argument("--binary", default=default_binary)
    parser.add_argument("--profiles", default="LOW,MEDIUM,HIGH")
    parser.add_argument("--cache", default=os.path.expanduser("~/.cache/media-worker-corpus"))
    parser.add_argument("--fixtures", action="store_true", help="also the fixture videos")
    parser.add_argument("--budget", type=float, help="also a byte budget of this fraction of the H.264 output")
    arguments = parser.parse_args()
    corpus.fetch(arguments.cache)
    inputs = [os.path.join(arguments.cache, name) for name in sorted(corpus.CORPUS) if "bugy" not in name]
    if arguments.fixtures:
        inputs += sorted(glob.glob(os.path.join(ROOT, "Fixtures", "*.*")))
    print("| input | profile | upload bytes | video bytes | SSIM | paths | CPU s | variant | bytes | SSIM | CPU s |"
          + (" budget | bytes | share | SSIM | CPU s |" if arguments.budget else ""))
    print("|---|---|---|---|---|---|---|---|---|---|---|" + ("---|---|---|---|---|" if arguments.budget else ""))
    bigger = converted = 0
    budgets = []  # (met, refused) per budgeted input
    encoded_pairs = []
    with tempfile.TemporaryDirectory() as work:
        for profile in arguments.profiles.split(","):
            for path in inputs:
                name = os.path.basename(path)
                plain, plain_cpu = process(arguments.binary, path, os.path.join(work, "plain"), profile, "free")
                if plain is None or "video" not in plain["outputs"]:
                    continue
                both, both_cpu = process(arguments.binary, path, os.path.join(work, "both"), profile, "always")
                video = plain["outputs"]["video"]
                upload = os.path.getsize(path)
                converted += 1
                bigger += video["bytes"] > upload
                video_ssim = ssim(os.path.join(work, "plain", "video.mp4"), path)
                paths = f'{video["encoder"]["path"]}/{video["encoder"].get("audioPath") or "-"}'
                row = [name, profile, upload, video["bytes"], f"{video_ssim:.4f}", paths, f"{plain_cpu:.2f}"]
                variants = [role for role in (both or {}).get("outputs", {}) if role in ("video_hevc", "video_av1")]
                if variants:
                    role = variants[0]
                    variant = both["outputs"][role]
                    variant_ssim = ssim(os.path.join(work, "both", variant["path"]), path)
                    variant_cpu = both_cpu - plain_cpu
                    row += [f'{role} ({variant["encoder"]["path"]})', variant["bytes"], f"{variant_ssim:.4f}",
                            f"{variant_cpu:.2f}"]
                    if variant["encoder"]["path"] == "transcode" and video["encoder"]["path"] == "transcode":
                        encoded_pairs.append((video["bytes"], variant["bytes"], video_ssim, variant_ssim,
                                              plain_cpu, variant_cpu))
                else:
                    row += ["-", "", "", ""]
                if arguments.budget:
                    row += budgeted(arguments.binary, path, os.path.join(work, "budget"), profile,
                                    int(video["bytes"] * arguments.budget), budgets)
                print("| " + " | ".join(str(cell) for cell in row) + " |", flush=True)
    print()
    print(f"H.264 outputs bigger than their upload: {bigger} of {converted}")
    if budgets:
        met = sum(1 for share in budgets if share is not None and 0.9 <= share <= 1.0)
        refused = sum(1 for share in budgets if share is None)
        print(f"Budgets of {arguments.budget:.0%} of the H.264 output: {met} of {len(budgets) - refused} within "
              f"90-100 % ({refused} refused as limits_exceeded)")
    if encoded_pairs:
        byte_ratio = sum(p[1] for p in encoded_pairs) / sum(p[0] for p in encoded_pairs)
        ssim_gain = sum(p[3] - p[2] for p in encoded_pairs) / len(encoded_pairs)
        cpu_ratio = sum(p[5] for p in encoded_pairs) / sum(p[4] for p in encoded_pairs)
        print(f"AV1 against H.264, both encoded ({len(encoded_pairs)} outputs): bytes {byte_ratio:.2f}x, "
              f"SSIM {ssim_gain:+.4f} on average, CPU {cpu_ratio:.2f}x (the variant's CPU over the H.264 run's)")


def budgeted(binary, path, out, profile, budget, budgets):
    """Runs `process --max-bytes budget`; records the output's share of it (None: refused)."""
    report, cpu = process(binary, path, out, profile, "off", budget)
    video = (report or {}).get("outputs", {}).get("video")
    if video is None:
        budgets.append(None)
        return [budget, "refused", "", "", f"{cpu:.2f}"]
    share = video["bytes"] / budget
    budgets.append(share)
    return [budget, video["bytes"], f"{share:.1%}", f'{ssim(os.path.join(out, "video.mp4"), path):.4f}', f"{cpu:.2f}"]


if __name__ == "__main__":
    main()
