"""Entry point: builds the parser from the command modules and turns errors into messages.

Each module in ``COMMAND_MODULES`` exposes ``register(subparsers)`` and sets ``func`` on its
parsers; adding a command group is one new module and one line here.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sqlite3
import sys

from lesion_studio import __version__
from lesion_studio.errors import JobCancelled, LesionStudioError, is_disk_full
from lesion_studio.logsetup import configure_logging, log_file

log = logging.getLogger("lesion_studio.cli")

COMMAND_MODULES = [
    "lesion_studio.cli.project_commands",
    "lesion_studio.cli.classifier_commands",
    "lesion_studio.cli.synthesis_commands",
    "lesion_studio.cli.batch_commands",
    "lesion_studio.cli.sample_commands",
    "lesion_studio.cli.model_commands",
    "lesion_studio.cli.run_commands",
    "lesion_studio.cli.reader_commands",
    "lesion_studio.cli.assist_commands",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lesion-studio",
        description="Curate bone-lesion boxes, synthesize lesions, and train and evaluate classifiers.",
    )
    parser.add_argument("--version", action="version", version=f"lesion-studio {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to the terminal")
    parser.add_argument("--selftest", action="store_true",
                        help="check this installation (compressed DICOM, built-in generator, main window) and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    if args.selftest:
        from lesion_studio.selftest import run_selftest

        return run_selftest()
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except JobCancelled as exc:
        print(f"lesion-studio: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("lesion-studio: interrupted.", file=sys.stderr)
        return 130
    except LesionStudioError as exc:
        print(f"lesion-studio: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, permissions: the OS message is what a person needs
        log.exception("OS error")
        where = getattr(exc, "filename", "") or ""
        if is_disk_full(exc):
            print(f"lesion-studio: error: the disk is full ({where}). Free some space and run it again.",
                  file=sys.stderr)
            return 2
        print(f"lesion-studio: error: {exc.strerror or exc} ({where})", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:  # the store translates the faults it knows; a full disk may still surface here
        log.exception("SQLite error")
        if is_disk_full(exc):
            print("lesion-studio: error: the disk holding the project is full; the change was rolled back. "
                  "Free some space and run it again.", file=sys.stderr)
            return 2
        print(f"lesion-studio: internal error (SQLite: {exc}). Details are in {log_file()}; please report them.",
              file=sys.stderr)
        return 70
    except Exception as exc:  # a bug: keep the traceback in the log, not in the user's face
        log.exception("unexpected error")
        print(
            f"lesion-studio: internal error ({type(exc).__name__}: {exc}). "
            f"Details are in {log_file()}; please report them.",
            file=sys.stderr,
        )
        return 70


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
