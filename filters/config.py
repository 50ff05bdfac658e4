"""``FiltersConfig``: the ``filters`` section of a job config, made from the registered filters.

One field per registered filter (its ``Config`` model, under the filter's name) and ``order``,
the filters to run. A filter's name and settings are declared once, in its own module; this
model follows the registry, so adding a filter adds its section here without another edit.

>>> FiltersConfig().order[:3]
['flag_following', 'format', 'wrong_answer']
>>> FiltersConfig(order=["format"]).repetition.max_sentence_repeats
4
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from .base import REGISTRY


class _FiltersBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    @model_validator(mode="after")
    def _order_is_valid(self):
        if len(set(self.order)) != len(self.order):
            raise ValueError(f"order: each filter at most once, got {self.order}")
        for name in self.order:
            REGISTRY[name].validate_settings(getattr(self, name))
        return self

    def settings(self, name: str):
        """The settings of filter ``name``."""
        return getattr(self, name)


def _model() -> type[BaseModel]:
    names = tuple(REGISTRY)
    default = [n for n, cls in REGISTRY.items() if cls.default_on]
    fields = {name: (cls.Config, cls.Config()) for name, cls in REGISTRY.items()}
    model = create_model(
        "FiltersConfig",
        __base__=_FiltersBase,
        __module__=__name__,
        order=(list[Literal[names]], Field(default_factory=lambda: list(default))),  # type: ignore[valid-type]
        on_error=(
            Literal["reject", "keep"],
            Field(
                default="reject",
                description=(
                    "A filter that raises on a sample: ``reject`` it (reason ``filter_error``, fail closed) "
                    "or ``keep`` it."
                ),
            ),
        ),
        **fields,
    )
    model.__doc__ = (
        "Filters to run, in ``order``: every sample gets every filter's verdict; ``reject_reason`` "
        "is the first failing one's reason. ``[]`` = keep every sample that was generated. "
        f"Default order: {default}. Each filter's settings are the section under its name."
    )
    return model


FiltersConfig = _model()
