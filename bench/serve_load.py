"""Load benchmark for `ganforge serve`: closed-loop clients on loopback; images/s and p50/p99 latency.

Starts the server as a subprocess (with a fresh seed-model generator unless one is given), then
sends the load from this process: `--clients` keep-alive connections, each sending its next
request when the last one is answered, `--requests` in all (after a warm-up), each asking for
`--n` images of a fresh random seed. A minimal HTTP/1.1 client on asyncio streams keeps the
client's own CPU cost low, because here it shares the machine's cores with the server.

    python bench/serve_load.py                       # 32 clients, 2,000 requests of 16 images, grid
    python bench/serve_load.py --format json --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_IMAGES_PER_S = 5_000
TARGET_P99_MS = 100.0


def make_seed_generator(folder: Path) -> Path:
    """A generator file with the seed preset's MLP (untrained: the cost of a forward is the same)."""
    import torch

    from ganforge.checkpoint import save_generator
    from ganforge.config import ModelConfig
    from ganforge.models import build_generator

    torch.manual_seed(0)
    cfg = ModelConfig(arch="mlp", image_size=28, channels=1, z_dim=100, width=256)
    path = folder / "generator.safetensors"
    save_generator(path, build_generator(cfg), cfg, {"preset": "seed", "step": 0, "data": "mnist", "seed": 0})
    return path


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its live children (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        children = [
            int(child)
            for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()
        ]
    except OSError:
        return float("nan")
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(child) for child in children)


def start_server(generator: Path, threads: int, max_n: int, workers: int = 1) -> tuple[subprocess.Popen[str], int]:
    """`ganforge serve` on 127.0.0.1 and a free port; returns the process and its port."""
    code = "import sys; from ganforge.cli import main; sys.exit(main(sys.argv[1:]))"
    cmd = [
        sys.executable,
        "-c",
        code,
        "serve",
        str(generator),
        "--port",
        "0",
        "--threads",
        str(threads),
        "--workers",
        str(workers),
    ]
    cmd += ["--max-n", str(max_n), "--device", "cpu"]
    env = {k: v for k, v in os.environ.items() if k != "GANFORGE_TOKEN"}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    for line in proc.stderr:  # the CLI logs the port it bound
        if m := re.search(r"http://127\.0\.0\.1:(\d+)/", line):
            return proc, int(m.group(1))
    raise SystemExit(f"the server exited before serving (code {proc.wait()})")


class Connection:
    """One keep-alive HTTP/1.1 connection: POST JSON, read status and body (Content-Length only)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int) -> None:
        self.reader, self.writer, self.port = reader, writer, port

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, port)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def load(port: int, *, clients: int, requests: int, n: int, fmt: str, rng: random.Random) -> dict[str, float]:
    """Send `requests` requests from `clients` concurrent connections; latency of each, and the wall time."""
    latencies: list[float] = []
    errors = 0
    remaining = requests

    async def client() -> None:
        nonlocal remaining, errors
        conn = await Connection.open(port)
        try:
            while remaining > 0:
                remaining -= 1
                body = json.dumps({"n": n, "seed": rng.randrange(2**63), "format": fmt}).encode()
                start = time.perf_counter()
                try:
                    status, _ = await conn.post("/v1/generate", body)
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                    errors += 1
                    await conn.close()
                    conn = await Connection.open(port)
                    continue
                latencies.append(time.perf_counter() - start)
                errors += status != 200
        finally:
            await conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall_s = time.perf_counter() - start
    latencies.sort()

    def pct(q: float) -> float:
        return 1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")

    return {
        "requests": requests,
        "images": requests * n,
        "errors": errors,
        "wall_s": wall_s,
        "images_per_s": requests * n / wall_s,
        "requests_per_s": requests / wall_s,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": 1000 * latencies[-1] if latencies else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("generator", nargs="?", help="a run dir or generator file (default: a fresh seed-model MLP)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--warmup", type=int, default=200, help="requests sent first and not counted")
    parser.add_argument("--n", type=int, default=16, help="images per request")
    parser.add_argument("--format", choices=("grid", "zip", "json"), default="grid")
    parser.add_argument("--threads", type=int, default=1, help="the server's torch threads")
    parser.add_argument("--workers", type=int, default=2, help="server processes (one a core here)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the request seeds")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        generator = Path(args.generator) if args.generator else make_seed_generator(Path(tmp))
        proc, port = start_server(generator, args.threads, max(args.n, 256), args.workers)
        try:
            rng = random.Random(args.seed)
            common = {"clients": args.clients, "n": args.n, "fmt": args.format, "rng": rng}
            asyncio.run(load(port, requests=args.warmup, **common))
            server_cpu_s, client_cpu_s = cpu_seconds(proc.pid), time.process_time()
            result = asyncio.run(load(port, requests=args.requests, **common))
            server_cpu_s, client_cpu_s = cpu_seconds(proc.pid) - server_cpu_s, time.process_time() - client_cpu_s
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            if proc.stderr is not None:
                proc.stderr.close()

    result |= {
        "clients": args.clients,
        "n": args.n,
        "format": args.format,
        "server_threads": args.threads,
        "workers": args.workers,
    }
    result["cpus"] = os.cpu_count() or 0
    result["server_cpu_ms_per_request"] = 1000 * server_cpu_s / args.requests
    result["client_cpu_ms_per_request"] = 1000 * client_cpu_s / args.requests
    result["load_average_1m"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    ok = result["errors"] == 0 and result["images_per_s"] >= TARGET_IMAGES_PER_S and result["p99_ms"] < TARGET_P99_MS
    print(
        f"{args.requests} requests x {args.n} images ({args.format}), {args.clients} clients, {result['cpus']} CPUs\n"
        f"throughput  {result['images_per_s']:,.0f} images/s  ({result['requests_per_s']:,.0f} requests/s)\n"
        f"latency     p50 {result['p50_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms  max {result['max_ms']:.1f} ms\n"
        f"errors      {result['errors']}\n"
        f"CPU         server {result['server_cpu_ms_per_request']:.2f} ms/request, "
        f"client {result['client_cpu_ms_per_request']:.2f} ms/request; "
        f"load average {result['load_average_1m']:.1f} (the machine is shared)\n"
        f"target      >= {TARGET_IMAGES_PER_S:,} images/s, p99 < {TARGET_P99_MS:.0f} ms, 0 errors: "
        f"{'met' if ok else 'NOT met'}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
