"""Dock panels. Each is a plain QWidget; the main window registers them in one table (app.PANELS)."""
