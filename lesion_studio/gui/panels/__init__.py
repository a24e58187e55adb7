"""Dock panels. Each is a plain QWidget; the main window registers them in one table (app.PANELS)."""


def report(window: object, status_label: object, text: str, level: str) -> None:
    """A panel's message: in the window's banner and log, and, unless it is only information, in
    the panel's own status line so it stays visible there."""
    show = getattr(window, "show_message", None)
    if show is not None:
        show(text, level)
    if level != "info":
        status_label.setText(text)  # type: ignore[attr-defined]
