"""Fault injection: die (or get a signal) at a named point of the work, deterministically.

Tests of resumability stop a job at a chosen event (a checkpoint written, a file
committed, a training step done) instead of after a sleep. A process started with
``RECSEARCH_KILL_AT=POINT[:N[:SIGNAL]]`` sends itself SIGNAL (default SIGKILL, exactly
what ``kill -9`` does) the N-th time (default 1) it passes POINT, e.g.
``checkpoint-saved:2`` or ``train-step:30:SIGINT``. Unset, a point costs one lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "RECSEARCH_KILL_AT"
_passed: Counter[str] = Counter()


def fault_point(name: str) -> None:
    """Signal this process if ``$RECSEARCH_KILL_AT`` names this point and pass count."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, _, rest = spec.partition(":")
    if point != name:
        return
    count, _, sig = rest.partition(":")
    _passed[name] += 1
    if _passed[name] == int(count or 1):
        os.kill(os.getpid(), getattr(signal, sig) if sig else signal.SIGKILL)
