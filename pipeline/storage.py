"""Object-store options from the config (``storage_options``), for the driver and every worker.

fsspec reads per-protocol defaults from ``fsspec.config.conf``; every filesystem it makes
(``s3://`` input, output, evaluation files, the teacher check) takes them from there. The driver
sets them at plan time (``apply``); the workers get the same through the environment fsspec
reads when it is imported (``FSSPEC_<PROTOCOL>`` = the options as JSON), which the job passes in
Ray's runtime environment (``env_vars``). Without ``storage_options`` the stores' own
configuration applies (for S3: the ``AWS_*`` environment variables, ``~/.aws``).

Secrets in them never reach ``run.json`` (they are not part of a run's identity) or a printout
(``masked``).
"""

from __future__ import annotations

import json
import re

#: Option names whose values are secrets: shown as ``***``.
_SECRET = re.compile(r"key|secret|token|password|credential", re.IGNORECASE)
_PUBLIC = {"endpoint_url", "region_name", "anon", "use_ssl", "client_kwargs", "config_kwargs", "project"}


def apply(options: dict[str, dict]) -> None:
    """Make ``options`` the defaults of this process's fsspec filesystems, per protocol."""
    import fsspec.config

    for protocol, opts in options.items():
        fsspec.config.conf.setdefault(protocol, {}).update(opts)


def env_vars(options: dict[str, dict]) -> dict[str, str]:
    """The same for a worker process: the variables fsspec reads when it is imported.

    >>> env_vars({"s3": {"endpoint_url": "http://minio:9000"}})
    {'FSSPEC_S3': '{"endpoint_url": "http://minio:9000"}'}
    """
    return {f"FSSPEC_{protocol.upper()}": json.dumps(opts) for protocol, opts in options.items()}


def masked(options: dict[str, dict]) -> dict[str, dict]:
    """``options`` fit to print: secret values replaced.

    >>> masked({"s3": {"key": "AKIA...", "secret": "s", "endpoint_url": "http://minio:9000"}})
    {'s3': {'key': '***', 'secret': '***', 'endpoint_url': 'http://minio:9000'}}
    """
    return {
        p: {k: v if k in _PUBLIC or not _SECRET.search(k) else "***" for k, v in o.items()} for p, o in options.items()
    }
