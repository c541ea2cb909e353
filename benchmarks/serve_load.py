"""Load test of ``tunelab serve`` on loopback: 32 concurrent clients for 30 s, for the
PyTorch backend in fp32 and in bf16 (``--precision bf16``) and the ONNX int8 backend, against
the starter sentiment classifier.

Each client sends one test review per request (``{"text": ...}``), waiting for each answer
before the next, until the time is up; requests under way then finish (bounded by the
client timeout). The server micro-batches the concurrent requests. Both backends get the
same ``--threads`` (default 1): on a small machine shared with other jobs, multi-threaded
inference spends its time waiting for busy cores (measured here: 0.6 s per review with 2
PyTorch threads under load, 0.02 s with one).

Usage::

    python benchmarks/serve_load.py [--clients 32] [--seconds 30]

Writes ``benchmarks/results/serve_load.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from onnx_speed import TEST, ensure_export, ensure_run  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(
    run: Path, backend: str, port: int, threads: int, log: Path, precision: str = "fp32"
) -> subprocess.Popen:
    """``tunelab serve`` in its own process; returns once /health answers."""
    import httpx

    command = [sys.executable, "-m", "tunelab.cli", "serve", str(run), "--backend", backend,
               "--port", str(port), "--threads", str(threads),
               "--precision", precision]  # fmt: skip
    server = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.time() + 180
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with {server.returncode}; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.5)
    server.kill()
    raise RuntimeError(f"server did not answer within 180 s; see {log}")


async def load(url: str, texts: list[str], clients: int, seconds: float) -> dict:
    """Run ``clients`` request loops for ``seconds``; latencies of the finished requests."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(number: int, http: httpx.AsyncClient) -> None:
        index = number
        while time.perf_counter() < stop:
            text = texts[index % len(texts)]
            index += clients
            started = time.perf_counter()
            try:
                answer = await http.post(f"{url}/predict", json={"text": text})
                if answer.status_code != 200 or answer.json()[0]["text"] != text:
                    errors.append(f"{answer.status_code}: {answer.text[:200]}")
                    continue
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        await asyncio.gather(*(client(i, http) for i in range(clients)))
    elapsed = time.perf_counter() - began
    ms = np.asarray(latencies) * 1000
    return {
        "requests": len(latencies) + len(errors),
        "errors": len(errors),
        "error_examples": errors[:3],
        "seconds": round(elapsed, 2),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 1) if len(ms) else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "bench-serve")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--threads", type=int, default=1, help="server threads per forward")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "serve_load.json")
    parser.add_argument("--texts", type=Path, default=TEST, help="CSV with a text column")
    args = parser.parse_args()

    import pandas as pd

    ensure_run(args.run)
    ensure_export(args.run)
    texts = pd.read_csv(args.texts)["text"].astype(str).tolist()
    rows = []
    backends = (("torch", "fp32", "PyTorch fp32"), ("torch", "bf16", "PyTorch bf16"),
                ("onnx", "fp32", "ONNX Runtime int8"))  # fmt: skip
    for backend, precision, name in backends:
        port = free_port()
        log = Path(tempfile.gettempdir()) / f"tunelab-serve-{backend}-{precision}.log"
        server = start_server(args.run, backend, port, args.threads, log, precision)
        try:
            url = f"http://127.0.0.1:{port}"
            result = asyncio.run(load(url, texts, args.clients, args.seconds))
        finally:
            server.terminate()
            server.wait(timeout=60)
        rows.append({"backend": name, "clients": args.clients, "threads": args.threads, **result})
        print(f"{name}: {result}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"run": str(args.run), "rows": rows}, indent=2) + "\n")
    print(f"\n{args.clients} clients, {args.seconds:g} s, one review per request, loopback, "
          f"{args.threads} server thread(s)")  # fmt: skip
    print("| backend | requests | errors | req/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['requests']} | {r['errors']} | {r['requests_per_second']} "
              f"| {r['p50_ms']} | {r['p99_ms']} |")  # fmt: skip


if __name__ == "__main__":
    main()
