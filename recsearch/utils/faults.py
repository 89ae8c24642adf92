"""Fault injection: die at a named point of the work, exactly as ``kill -9`` would.

Tests of resumability kill a job at a chosen event (a checkpoint written, a file
committed) instead of after a sleep, so they are deterministic. A process dies at
point ``P`` the ``N``-th time it passes it when started with
``RECSEARCH_KILL_AT=P:N`` (``P`` alone: the first time). Unset, a point costs one
dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "RECSEARCH_KILL_AT"
_passed: Counter[str] = Counter()


def fault_point(name: str) -> None:
    """SIGKILL this process if ``$RECSEARCH_KILL_AT`` names this point and pass count."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, _, count = spec.partition(":")
    if point != name:
        return
    _passed[name] += 1
    if _passed[name] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
