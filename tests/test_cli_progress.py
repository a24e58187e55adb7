"""The terminal progress sink: outer steps are never swallowed by the inner steps between them."""

from __future__ import annotations

import io

from lesion_studio.cli.progress import TerminalProgress
from lesion_studio.jobs import ProgressEvent


def test_an_outer_step_prints_between_many_inner_events() -> None:
    """A log (not a terminal) prints a line every few seconds; an experiment's stage ticks come
    between a trainer's step events, and each tick must reach the log."""
    out = io.StringIO()
    sink = TerminalProgress(out)
    for stage_done in (1, 2):
        for step in range(1, 50):
            sink(ProgressEvent("training classifier", step + 50 * (stage_done - 1), 1000))
        sink(ProgressEvent("experiment", stage_done, 5, f"stage {stage_done}"))
    lines = out.getvalue().splitlines()
    assert any(line.startswith("experiment") and "1/5" in line and "stage 1" in line for line in lines)
    # Inner events are still thinned: the 98 training steps print once, not 98 times.
    assert sum(line.startswith("training classifier") for line in lines) == 1


def test_a_final_event_always_prints() -> None:
    out = io.StringIO()
    sink = TerminalProgress(out)
    sink(ProgressEvent("scoring", 1, 3))
    sink(ProgressEvent("scoring", 2, 3))
    sink(ProgressEvent("scoring", 3, 3))
    assert out.getvalue().splitlines()[-1].startswith("scoring [") and "3/3" in out.getvalue()
