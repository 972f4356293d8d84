"""Progress bar, loss history, and the convergence plot.

``options={"history": k}`` records the loss every ``k`` iterations (every
``k`` epochs with mini-batches, where it is the mean mini-batch loss of the
epoch) into ``res.history``; ``options={"progress": True}`` shows a tqdm bar
with the iteration and the current loss. Both are served between chunks of
the compiled driver, which ends its chunks on the iterations to record, so
the history is the same through both drivers.
"""

import math
import time

import numpy as np
from scipy.optimize import OptimizeResult

# Seconds between two refreshes of the bar's loss.
_REFRESH = 0.1


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:
        raise ImportError("options['progress'] needs tqdm: pip install tqdm "
                          "(or rmsopt[progress])") from exc
    return tqdm


class Monitor:
    """Records the loss history and drives the progress bar of one run.

    The run calls it after iterations and epochs; it never changes the run.

    Parameters
    ----------
    history : int or None
        Record the loss every ``history`` iterations (epochs with batches).
    progress : bool
        Show a tqdm bar.
    total : int
        The bar's length: the most iterations the run can make.
    batched : bool
        Mini-batches: the history holds epoch losses.
    free_loss : callable
        ``free_loss() -> float or None``: the loss the last gradient call
        gave for free (``jac=True``), shown on the bar.
    """

    def __init__(self, history, progress, total, batched, free_loss):
        self.every = history
        self.batched = batched
        self.free_loss = free_loss
        self.nit, self.fun, self.epoch = [], [], []
        self.bar = None
        if progress:
            self.bar = _tqdm()(total=total, unit="it", leave=True)
            self.last = -math.inf

    @property
    def records_iterations(self):
        """The interval of iterations to record (the compiled driver ends
        its chunks there), or None."""
        return None if self.batched else self.every

    def after_iteration(self, nit, value):
        """Full batches: record ``value()`` every ``history`` iterations;
        refresh the bar."""
        every = self.records_iterations
        if every is not None and nit % every == 0 and (
                not self.nit or self.nit[-1] != nit):
            self.nit.append(nit)
            self.fun.append(value())
        self.update_bar(nit)

    def after_epoch(self, epoch, nit, loss):
        """Mini-batches: record the epoch's mean loss every ``history``
        epochs."""
        if self.every is not None and epoch % self.every == 0:
            self.nit.append(nit)
            self.fun.append(loss)
            self.epoch.append(epoch)

    def update_bar(self, nit):
        bar = self.bar
        if bar is None:
            return
        now = time.perf_counter()
        if now - self.last < _REFRESH:
            return
        self.last = now
        bar.n = nit
        loss = self.free_loss()
        if loss is None and self.fun:
            loss = self.fun[-1]  # the last recorded
        if loss is not None:
            bar.set_postfix(loss=f"{loss:.6g}", refresh=False)
        bar.refresh()

    def finish(self, res):
        """Close the bar; put the history into the result."""
        if self.bar is not None:
            self.bar.n = res.nit
            if not self.batched or self.free_loss() is not None:
                self.bar.set_postfix(loss=f"{res.fun:.6g}", refresh=False)
            self.bar.close()
        if self.every is None:
            return
        if not self.batched and (not self.nit or self.nit[-1] != res.nit):
            self.nit.append(res.nit)
            self.fun.append(res.fun)
        history = OptimizeResult(nit=np.array(self.nit, dtype=np.int64),
                                 fun=np.array(self.fun, dtype=np.float64))
        if self.batched:
            history.epoch = np.array(self.epoch, dtype=np.int64)
        res.history = history

    def close(self):
        """On an exception: close the bar only."""
        if self.bar is not None:
            self.bar.close()


def plot_convergence(res, ax=None, **kwargs):
    r"""Plot the loss history of a result: ``res.history.fun`` against
    ``res.history.nit``, on a log scale when the losses are positive.

    Parameters
    ----------
    res : scipy.optimize.OptimizeResult
        A result of :func:`rmsopt.minimize` run with
        ``options={"history": k}``.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure's axes by default.
    **kwargs
        Passed to ``ax.plot``.

    Returns
    -------
    ax : matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np, rmsopt
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> res = rmsopt.minimize(lambda x: float(x @ x), np.ones(3),
    ...                       jac=lambda x: 2 * x,
    ...                       options={"history": 10, "maxiter": 100})
    >>> ax = rmsopt.plot_convergence(res)
    >>> ax.get_xlabel()
    'iteration'
    """
    history = getattr(res, "history", None)
    if history is None:
        raise ValueError("the result has no history: run minimize with "
                         "options={'history': k} to record the loss every k "
                         "iterations")
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("plot_convergence needs matplotlib: pip install "
                          "matplotlib") from exc
    if ax is None:
        _, ax = plt.subplots()
    fun = np.asarray(history.fun, dtype=float)
    batches = "epoch" in history
    kwargs.setdefault("label", "mean mini-batch loss" if batches
                      else "loss")
    ax.plot(history.nit, fun, **kwargs)
    finite = fun[np.isfinite(fun)]
    if finite.size and (finite > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("mean mini-batch loss per epoch" if batches else "loss")
    return ax
