"""Learning-rate schedules for ``options={"lr": ...}`` of :func:`rmsopt.minimize`.

Each function returns a small immutable :class:`Schedule` that the compiled
kernels evaluate at every step; see the "Learning-rate schedules" section of
the docs. Any Python callable ``lr(t) -> float`` works too (python driver).

>>> from rmsopt import schedules
>>> schedules.step(0.1, step_size=100, gamma=0.5)(250)
0.025
"""

from ._schedules import (Schedule, constant, cosine, exponential,
                         inverse_time, linear_warmup, reduce_on_plateau, step)

__all__ = ["Schedule", "constant", "cosine", "exponential", "inverse_time",
           "linear_warmup", "reduce_on_plateau", "step"]
