"""Progress lines for long local commands (`tugboat dev up`): numbered steps, each saying what it
does, how long it usually takes, how long it took, and a summary at the end. Pure: the caller
gives the line sink and the clock."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Step:
    title: str
    number: int
    started: float
    seconds: float | None = None  # set when the step has ended
    failed: bool = False
    _last_tick: float = 0.0


@dataclass
class Steps:
    emit: Callable[[str], None]
    total: int
    name: str = "dev up"
    clock: Callable[[], float] = time.monotonic
    heartbeat: float = 10.0  # a waiting step says it is still waiting at most this often
    done: list[Step] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def _tag(self, number: int | None = None) -> str:
        where = f" {number}/{self.total}" if number is not None else ""
        return f"[{self.name}{where} +{self.clock() - self.started:.0f}s]"

    @contextmanager
    def step(self, title: str, detail: str = "", usually: str = "") -> Iterator[Step]:
        """One numbered step: a line when it starts, one when it ends (or fails, then re-raised)."""
        s = Step(title, len(self.done) + 1, self.clock())
        s._last_tick = s.started
        self.done.append(s)
        self.emit(f"{self._tag(s.number)} {title}{f': {detail}' if detail else ''}"
                  f"{f' (usually {usually})' if usually else ''}")
        try:
            yield s
        except BaseException as exc:
            s.seconds, s.failed = self.clock() - s.started, True
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.emit(f"{self._tag(s.number)} {title} failed after {s.seconds:.1f} s: {first}")
            raise
        s.seconds = self.clock() - s.started
        self.emit(f"{self._tag(s.number)} {title} done in {s.seconds:.1f} s")

    def note(self, message: str) -> None:
        """A line inside the current step (what it found, what it decided)."""
        self.emit(f"{self._tag(self.done[-1].number if self.done else None)} {message}")

    def tick(self, waiting_for: str) -> None:
        """Called from a wait loop: says it is still waiting, at most once per heartbeat."""
        if not self.done:
            return
        s, now = self.done[-1], self.clock()
        if now - s._last_tick >= self.heartbeat:
            s._last_tick = now
            self.emit(f"{self._tag(s.number)} still waiting for {waiting_for} ({now - s.started:.0f} s)")

    def summary(self, what: str) -> str:
        """'WHAT ready in 41.0 s: control plane 14.2 s, node pools 0.4 s, ...'"""
        parts = ", ".join(f"{s.title} {s.seconds:.1f} s" for s in self.done
                          if s.seconds is not None)
        return f"[{self.name}] {what} ready in {self.clock() - self.started:.1f} s: {parts}"
