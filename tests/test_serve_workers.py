"""`ganforge serve --workers 2`: processes sharing one port draw the same images for the same seed."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

pytest.importorskip("fastapi")

from ganforge.checkpoint import save_generator  # noqa: E402
from ganforge.config import ModelConfig  # noqa: E402
from ganforge.models import build_generator  # noqa: E402


def test_two_worker_processes_serve_identical_images(tmp_path):
    cfg = ModelConfig(arch="mlp", image_size=8, channels=1, z_dim=8, width=16)
    path = tmp_path / "generator.safetensors"
    save_generator(path, build_generator(cfg), cfg, {"preset": "test"})
    code = "import sys; from ganforge.cli import main; sys.exit(main(sys.argv[1:]))"
    cmd = [sys.executable, "-c", code, "serve", str(path), "--port", "0", "--workers", "2", "--device", "cpu"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        if line.startswith("watermark: made a new per-user key"):  # the first use of this test's GANFORGE_HOME
            line = proc.stderr.readline()
        assert "http://127.0.0.1:" in line, line
        url = line.strip().rsplit(" ", 1)[-1].rstrip("/")
        deadline = time.monotonic() + 60
        bodies = set()
        with httpx.Client(base_url=url, timeout=10) as client:
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the workers did not start"
                time.sleep(0.2)
            for _ in range(8):  # new connections land on either worker
                with httpx.Client(base_url=url, timeout=10) as fresh:
                    r = fresh.post("/v1/generate", json={"n": 4, "seed": 11, "format": "json"})
                    assert r.status_code == 200
                    bodies.add(r.text)
        assert len(bodies) == 1
    finally:
        proc.terminate()
        proc.communicate(timeout=30)  # also closes the stderr pipe
