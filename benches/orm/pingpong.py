"""A bare Unix-socket round trip between two processes, by where the scheduler may run them:
what the store's socket costs a statement before any work is done on either side
(docs/statement-path.md, issue 18). A request of 300 bytes, a reply of 1,200 (about a
point read's), over a socketpair; the client may spin between calls (``--gap``), as Django
works between two statements, so that the server has gone to sleep when the next one comes.

    python benches/orm/pingpong.py [--calls 3000] [--repeat 3]

Placements: ``same`` (both processes on CPU 0), ``split`` (client on CPU 0, server on
CPU 1), ``free`` (wherever the kernel puts them). Printed: median and 90th percentile µs
per round trip. Linux only (CPU affinity).
"""

from __future__ import annotations

import argparse
import os
import socket
import time

PLACEMENTS = {"same": ({0}, {0}), "split": ({0}, {1}), "free": (None, None)}


def serve(sock: socket.socket, cpus: set[int] | None) -> None:
    if cpus is not None:
        os.sched_setaffinity(0, cpus)
    while request := sock.recv(65536):
        sock.sendall(request * 4)


def round_trips(placement: str, calls: int, gap: float) -> list[float]:
    client_cpus, server_cpus = PLACEMENTS[placement]
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        ours.close()
        try:
            serve(theirs, server_cpus)
        finally:
            os._exit(0)
    theirs.close()
    allowed = os.sched_getaffinity(0)
    if client_cpus is not None:
        os.sched_setaffinity(0, client_cpus)
    request = b"x" * 300
    times = []
    try:
        for i in range(calls + 500):  # the first 500: warm-up
            if gap:
                until = time.perf_counter() + gap
                while time.perf_counter() < until:
                    pass
            t0 = time.perf_counter()
            ours.sendall(request)
            ours.recv(65536)
            if i >= 500:
                times.append(time.perf_counter() - t0)
    finally:
        ours.close()
        os.waitpid(pid, 0)
        os.sched_setaffinity(0, allowed)
    return sorted(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=3000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--gaps", default="0,200", help="µs of spinning before each call")
    args = p.parse_args()
    if os.cpu_count() is None or os.cpu_count() < 2:
        raise SystemExit("needs two CPUs")
    print("| run | gap µs | placement | median µs | p90 µs |")
    print("| ---: | ---: | --- | ---: | ---: |")
    for run in range(1, args.repeat + 1):
        for gap in (float(g) for g in args.gaps.split(",")):
            for placement in PLACEMENTS:
                times = round_trips(placement, args.calls, gap * 1e-6)
                median, p90 = times[len(times) // 2], times[len(times) * 9 // 10]
                print(f"| {run} | {gap:.0f} | {placement} | {median * 1e6:.1f} | "
                      f"{p90 * 1e6:.1f} |", flush=True)


if __name__ == "__main__":
    main()
