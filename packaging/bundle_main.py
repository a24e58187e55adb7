"""Entry point of the desktop bundle: the `lesion-studio` command; with no arguments, the app."""

import sys

from lesion_studio.cli.main import main

if __name__ == "__main__":
    # A double-click (or the desktop entry without a file) starts the app, not the help text.
    sys.exit(main(sys.argv[1:] or ["gui"]))
