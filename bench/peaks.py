"""Peak memory of a command the benchmarks run in a child process, from Linux's ``/proc``.

Not from ``wait4``: on Linux a child's ``ru_maxrss`` starts from the RSS its parent had when it
forked, kept across ``exec`` (a child forked by a benchmark process holding 186 MiB reported 186
MiB for a command that used far less). ``VmHWM`` in ``/proc/<pid>/status`` belongs to the
program the process runs, so the command's own peak is read there while it runs.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

POLL_SECONDS = 0.02  # a process living less than this between two reads can go unseen


def peak_kib(pid: int) -> int | None:
    """The process's peak RSS so far (KiB); None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None  # a zombie has no memory left to report


def children(pid: int) -> list[int]:
    """The process's children (of all its threads)."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return []
    found = []
    for task in tasks:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


def tree(pid: int) -> list[int]:
    """The process and all its descendants."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += children(current)
    return out


@dataclass(frozen=True)
class Watched:
    seconds: float
    peak_kib: int  # the largest peak RSS of the command's processes
    returncode: int


def run_watched(
    cmd: list[str], *, env: dict[str, str], output: IO[Any], timeout: float, **popen: Any
) -> Watched:
    """Run ``cmd`` (its output to ``output``), reading the peak RSS of it and its descendants
    every ``POLL_SECONDS`` until it exits; killed after ``timeout`` seconds."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=output, stderr=subprocess.STDOUT, **popen)
    peaks: dict[int, int] = {}
    while proc.poll() is None:
        for pid in tree(proc.pid):
            if (kib := peak_kib(pid)) is not None:
                peaks[pid] = max(kib, peaks.get(pid, 0))
        if time.perf_counter() - start > timeout:
            proc.kill()
            proc.wait()
            break
        time.sleep(POLL_SECONDS)
    return Watched(time.perf_counter() - start, max(peaks.values(), default=0), proc.returncode)
