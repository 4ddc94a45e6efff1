"""Claims of "BPTT from scratch in numpy".

- :func:`learns_beyond_opponent`: over several seeds, training with full BPTT meets a
  success criterion fixed before the run (final loss below a fraction of the memoryless
  baseline) on every seed, and the same loop with the gradient cut after one step
  (``bptt.truncation.truncated_gradient`` with tau = 1) meets it on none.

That BPTT agrees with finite differences is :func:`bptt.claims.gradients.agreement`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bptt import _validate as v


@dataclasses.dataclass(frozen=True)
class Learning:
    """Final losses as fractions of the baseline, per seed, for the model and its opponent."""

    model: np.ndarray
    opponent: np.ndarray
    criterion: float

    @property
    def model_successes(self) -> int:
        return int(np.sum(self.model < self.criterion))

    @property
    def opponent_successes(self) -> int:
        return int(np.sum(self.opponent < self.criterion))

    @property
    def margin(self) -> float:
        """Best opponent seed over worst model seed: how many times lower the model ends."""
        return float(self.opponent.min() / self.model.max())

    @property
    def holds(self) -> bool:
        seeds = self.model.size
        return seeds >= 5 and self.model_successes == seeds and self.opponent_successes == 0


def learns_beyond_opponent(
    model_losses, opponent_losses, baseline: float, *, criterion: float = 0.05
) -> Learning:
    """model_losses, opponent_losses : (S,) final losses, one per seed (S >= 5 for the claim).

    ``baseline`` is the loss of the best memoryless predictor; a run succeeds when its final
    loss is below ``criterion * baseline``.
    """
    baseline = v.positive_float("baseline", baseline)
    criterion = v.positive_float("criterion", criterion)
    dims: v.Dims = {}
    model = v.float_array("model_losses", np.asarray(model_losses, dtype=np.float64), ("S",), dims)
    opponent = v.float_array(
        "opponent_losses", np.asarray(opponent_losses, dtype=np.float64), ("S",), dims
    )
    return Learning(model / baseline, opponent / baseline, criterion)
