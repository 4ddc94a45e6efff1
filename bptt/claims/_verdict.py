"""The two result types the claim predicates return (shared by the topic modules)."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome of a claim: ``holds``, and ``detail``, the numbers behind it."""

    holds: bool
    detail: dict

    def __bool__(self) -> bool:
        return bool(self.holds)


class MarginVerdict(NamedTuple):
    """``holds``: the claim is true of the measurement; ``margin``: how far from failing
    (positive when it holds), in the unit ``detail`` names."""

    holds: bool
    margin: float
    detail: str
