"""What the benchmarks record about the machine they ran on."""

from __future__ import annotations

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
