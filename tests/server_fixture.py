"""What tests/test_server.py and tests/test_browser.py share: a small library
of generated videos indexed with models/shapes-clip, and a `clipfind serve`
process on a free loopback port.

shapes-clip was trained on coloured shapes on grey backgrounds, so videos of a
coloured square have answers known in advance ("a green square" is the second
half of redgreen.mp4). Standard library only.
"""
import json
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models/shapes-clip"


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *map(str, args)], check=True)


def square(color, start=0, end=1e9):
    # A 180 px square in the middle (the model sees a centre crop).
    return f"drawbox=x=230:y=90:w=180:h=180:color={color}:t=fill:enable='between(t,{start},{end})'"


def make_library(folder):
    """redgreen.mp4: 6 s, red square for 0-3 s then green; blue.webm: 4 s,
    blue square; yellow.png: a still picture. 640x360, so thumbnails shrink."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    grey = "color=c=0x7f7f7f:s=640x360:r=25"
    ffmpeg("-f", "lavfi", "-i", f"{grey}:d=6", "-vf", square("red", 0, 2.999) + "," + square("green", 3, 99),
           "-pix_fmt", "yuv420p", "-g", "25", folder / "redgreen.mp4")
    ffmpeg("-f", "lavfi", "-i", f"{grey}:d=4", "-vf", square("blue"), "-c:v", "libvpx", "-b:v", "200k",
           folder / "blue.webm")
    ffmpeg("-f", "lavfi", "-i", f"{grey}:d=1", "-vf", square("yellow"), "-frames:v", "1", folder / "yellow.png")
    return folder


def index(clipfind, index_dir, *inputs):
    r = subprocess.run([str(clipfind), "index", "--index", str(index_dir), "--model", str(MODEL),
                        "--no-progress", *map(str, inputs)], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"clipfind index failed: {r.stderr}")
    return r


class Server:
    """`clipfind serve` on a free port; `with Server(...) as s:` stops it."""

    def __init__(self, clipfind, index_dir, *extra, env=None):
        # stderr to a file: a full pipe nobody reads would block the server.
        self.errors = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [str(clipfind), "serve", "--index", str(index_dir), "--port", "0", "--device", "cpu", *map(str, extra)],
            stdout=subprocess.PIPE, stderr=self.errors, text=True, env=env)
        self.banner = []
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.banner.append(line)
            m = re.search(r"listening on (http://127\.0\.0\.1:(\d+)/)", line)
            if m:
                self.url, self.port = m.group(1).rstrip("/"), int(m.group(2))
                return
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError("clipfind serve did not start: " + "".join(self.banner) + self.read_stderr())

    def read_stderr(self):
        self.errors.seek(0)
        return self.errors.read()

    def get(self, path, headers=None, method="GET", data=None):
        """(status, headers, body bytes); never raises for HTTP errors."""
        req = urllib.request.Request(self.url + path, headers=headers or {}, method=method, data=data)
        try:
            with urllib.request.urlopen(req, timeout=30) as res:
                return res.status, res.headers, res.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def json(self, path, **kw):
        status, _, body = self.get(path, **kw)
        return status, json.loads(body)

    def stop(self, sig=None):
        """Sends `sig` (SIGTERM by default); returns (exit status, seconds it took)."""
        import signal
        if self.errors.closed:
            return self.proc.returncode, 0.0
        t0 = time.time()
        if self.proc.poll() is None:
            self.proc.send_signal(sig or signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc.stdout.close()
        self.stderr = self.read_stderr()
        self.errors.close()
        return rc, time.time() - t0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
