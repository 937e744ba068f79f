"""Stopping the peers' processes (jasmind, redis-server, bearerbox, smsbox) at a fixture's end."""

from __future__ import annotations

import subprocess


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL if it has not ended within 15 s."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
