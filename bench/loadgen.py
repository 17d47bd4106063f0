"""A small HTTP/1.1 load generator, used by bench.load when wrk is not installed.

N keep-alive connections on asyncio streams, each sending one request after another for a
fixed time; prints one JSON line like bench.load's wrk script does. It spends far more CPU
per request than wrk, so on a small machine it caps what it can measure: the ratios it gives
are lower bounds.

Run: python -m bench.loadgen URL --connections N --duration S [--method M] [--header 'K: V']
     [--body TEXT]
"""

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit


async def _connection(
    host: str, port: int, request: bytes, until: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < until:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if status >= 400:
                errors[0] += 1
    except (ConnectionError, asyncio.IncompleteReadError):
        errors[1] += 1
    finally:
        writer.close()


async def run(
    url: str, method: str, headers: list[str], body: str, connections: int, duration: float
) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    data = body.encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", *headers]
    if data or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(data)}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + data
    latencies: list[float] = []
    errors = [0, 0]  # status >= 400, broken connections
    start = time.perf_counter()
    until = start + duration
    await asyncio.gather(
        *(_connection(host, port, request, until, latencies, errors) for _ in range(connections))
    )
    elapsed = time.perf_counter() - start
    latencies.sort()

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] if latencies else 0

    return {
        "requests": len(latencies),
        "duration_us": elapsed * 1e6,
        "p50_us": percentile(50) * 1e6,
        "p99_us": percentile(99) * 1e6,
        "status_errors": errors[0],
        "socket_errors": errors[1],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--body", default="")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10)
    args = parser.parse_args()
    result = asyncio.run(
        run(args.url, args.method, args.header, args.body, args.connections, args.duration)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
