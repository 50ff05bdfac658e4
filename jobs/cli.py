"""What the entrypoints share: the common arguments (``--config``, ``--set``, ``--verbose``) and
the errors a user can fix, each printed as one line with exit code 2."""

from __future__ import annotations

import argparse
import sys


def parser(doc: str, config_help: str = "job config (YAML)", config_required: bool = True) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=config_required, help=config_help)
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override one config value (YAML syntax), repeatable",
    )
    ap.add_argument(
        "--verbose",
        action="store_true",
        help="Ray Data's progress and the workers' logs on the console (ray.verbose), not one progress line",
    )
    return ap


def overrides(args: argparse.Namespace) -> list[str]:
    """``--set`` values, and ``ray.verbose=true`` for ``--verbose``."""
    return [*args.overrides, *(["ray.verbose=true"] if args.verbose else [])]


def user_errors() -> tuple[type[Exception], ...]:
    """A bad config, input or output location, or a cluster that cannot run the job: exit 2."""
    from pipeline.cluster import ClusterError
    from pipeline.loading import ConfigError
    from pipeline.read import InputError
    from pipeline.run_folder import OutputError

    return ConfigError, InputError, OutputError, ClusterError


def fail(e: Exception, code: int = 2) -> int:
    print(f"error: {e}", file=sys.stderr)
    return code
