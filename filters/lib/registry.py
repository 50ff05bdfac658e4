"""Named classes, each name once: the filters' registry (``filters.base``) and the teacher
dialects' (``pipeline.dialects``) are both one of these.

>>> r = Registry("widget")
>>> @r.add
... class A:
...     name = "a"
>>> r.named("a") is A, r.names()
(True, ['a'])
>>> r.add(type("B", (), {"name": "a"}))
Traceback (most recent call last):
ValueError: widget B: name must be set and unique, got 'a'
>>> r.named("z")
Traceback (most recent call last):
ValueError: widget must be one of ['a'], got 'z'
"""

from __future__ import annotations


class Registry(dict):
    """``name -> class`` in registration order; ``add`` is the decorator."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def add(self, cls: type) -> type:
        name = getattr(cls, "name", None)
        if not name or name in self:
            raise ValueError(f"{self.kind} {cls.__name__}: name must be set and unique, got {name!r}")
        self[name] = cls
        return cls

    def named(self, name: str) -> type:
        try:
            return self[name]
        except KeyError:
            raise ValueError(f"{self.kind} must be one of {self.names()}, got {name!r}") from None

    def names(self) -> list[str]:
        return sorted(self)
