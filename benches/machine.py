"""What the benchmarks record about the machine they ran on."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_model(default: str = "unknown") -> str:
    """The CPU's model name, as /proc/cpuinfo gives it (``default`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return default


def process_cpu_seconds(pid: int) -> float:
    """CPU time of every thread of process ``pid`` so far (Linux: its threads'
    /proc schedstat; 0.0 where that is not available). A thread that ends
    while being read is left out."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for task in tasks:
        try:
            total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
        except OSError:
            continue
    return total / 1e9


def process_switches(pid: int) -> tuple[int, int]:
    """Voluntary and involuntary context switches of every thread of process ``pid`` so
    far (Linux: its threads' /proc status; (0, 0) elsewhere). A voluntary switch is a
    thread going to sleep (waiting for a reply, a request, a lock); an involuntary one is
    a thread preempted while it could still run."""
    voluntary = involuntary = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0, 0
    for task in tasks:
        try:
            lines = Path(f"/proc/{pid}/task/{task}/status").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("voluntary_ctxt_switches:"):
                voluntary += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                involuntary += int(line.split()[1])
    return voluntary, involuntary


def process_written_bytes(pid: int) -> int:
    """Bytes process ``pid`` has handed to write(2)/pwrite(2) so far (Linux:
    ``wchar`` of /proc/<pid>/io; 0 where that is not readable). Unlike CPU
    time it does not move with the machine's load: for a store's commit it
    is the pages the commit writes."""
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("wchar:"):
                return int(line.split(":", 1)[1])
    except (OSError, ValueError):
        pass
    return 0
