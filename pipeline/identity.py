"""What makes a run this run, and what its samples are, from one declaration: each config field's
mark in ``pipeline/config.py`` (``SPEED``, ``SAMPLES``; unmarked: identity).

- ``identity_config``: the config a resume must match (``run.json``): every setting but the
  ``SPEED`` ones (replicas, timeouts, where the output goes, how Ray runs, the storage secrets).
- ``sample_settings``: the settings a run's samples depend on, from a config dumped in ``run.json``
  (an earlier night's too): the ``SAMPLES`` ones. ``pipeline.catalog.fingerprint`` hashes them.
"""

from __future__ import annotations

import copy

from pydantic import BaseModel

from .config import JobConfig


def marked(model: type[BaseModel], mark: str, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Key paths of the fields of ``model`` (and its nested sections) that carry ``mark``.

    >>> marked(JobConfig, "samples")[:3]
    [('input', 'columns'), ('input', 'system_prompt'), ('teacher', 'model')]
    """
    out = []
    for name, f in model.model_fields.items():
        path = (*prefix, name)
        if (f.json_schema_extra or {}).get("run") == mark:
            out.append(path)
        elif isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel):
            out += marked(f.annotation, mark, path)
    return out


def identity_config(config: dict) -> dict:
    """``config`` (a ``JobConfig`` dumped to JSON) without its ``SPEED`` settings.

    >>> c = {"teacher": {"model": "m", "replicas": 4, "engine": {"seed": 0, "log_level": "INFO"}}, "ray": {}}
    >>> identity_config(c)
    {'teacher': {'model': 'm', 'engine': {'seed': 0}}}
    """
    out = copy.deepcopy(config)
    for path in marked(JobConfig, "speed"):
        parent = out
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
    return out


def sample_settings(config: dict) -> dict:
    """The ``SAMPLES`` settings of ``config`` (a dumped config; a setting it lacks is None), nested
    as in the config.

    >>> sample_settings({"teacher": {"model": "m", "replicas": 2}, "input": {"path": "a"}})["teacher"]["model"]
    'm'
    """
    out: dict = {}
    for path in marked(JobConfig, "samples"):
        value = config
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return out
