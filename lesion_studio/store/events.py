"""Who hears that a project's model registry changed, whoever changed it and on whatever thread.

A model is registered by a trainer on its worker thread (through its own connection to the
project), by an experiment, or by the first use of a built-in model. Every one of them goes
through :meth:`Project.register_model` (or updates or deletes a record), and the store announces
it here after the transaction commits. Listeners subscribe per project folder, so a window hears
about its own project only, from any connection in this process.

Listeners are called on the thread that committed; a GUI listener must hand the news to its own
thread (:class:`lesion_studio.gui.session.ProjectSession` does).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

_lock = threading.Lock()
_listeners: dict[Path, list[Callable[[], None]]] = {}


def on_models_changed(folder: Path, listener: Callable[[], None]) -> Callable[[], None]:
    """Call ``listener()`` after every committed change to the models of the project in ``folder``;
    returns the function that unsubscribes it."""
    key = Path(folder).resolve()
    with _lock:
        _listeners.setdefault(key, []).append(listener)

    def unsubscribe() -> None:
        with _lock:
            listeners = _listeners.get(key, [])
            if listener in listeners:
                listeners.remove(listener)
            if not listeners:
                _listeners.pop(key, None)
    return unsubscribe


def announce_models_changed(folder: Path) -> None:
    """Tell the listeners of ``folder`` (called by the store after the commit)."""
    with _lock:
        listeners = list(_listeners.get(Path(folder).resolve(), ()))
    for listener in listeners:
        try:
            listener()
        except Exception:  # a listener's bug must not fail the edit that was already committed
            log.exception("a models-changed listener failed")
