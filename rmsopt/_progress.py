"""Progress bar, loss history, and the convergence plot.

``options={"history": k}`` records the loss every ``k`` iterations (every
``k`` epochs with mini-batches, where it is the mean mini-batch loss of the
epoch) into ``res.history``; ``options={"progress": True}`` shows a tqdm bar
with the iteration and the current loss. Both are served between chunks of
the compiled driver, which ends its chunks on the iterations to record, so
the history is the same through both drivers.
"""

import math
import numbers
import time

import numpy as np
from scipy.optimize import OptimizeResult

# Seconds between two refreshes of the bar's loss.
_REFRESH = 0.1


def check_history(value):
    """None, or the recording interval as an int >= 1."""
    if value is None or value is False:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, numbers.Integral) or value < 1:
        raise ValueError(f"history must be None or an integer >= 1 (record "
                         f"every k iterations), got {value!r}")
    return int(value)


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:
        raise ImportError("options['progress'] needs tqdm: pip install tqdm "
                          "(or rmsopt[progress])") from exc
    return tqdm


class Monitor:
    """Records the history and drives the bar of one run."""

    def __init__(self, run, history, progress, epochs):
        self.run = run
        self.every = history
        self.epochs = epochs
        self.nit, self.fun, self.epoch = [], [], []
        self.bar = None
        if progress:
            total = run.settings.maxiter
            if epochs is not None and epochs.spec.epochs is not None:
                total = min(total, epochs.spec.epochs
                            * epochs.spec.per_epoch)
            self.bar = _tqdm()(total=total, unit="it", leave=True)
            self.last = -math.inf
        self.free_loss = run.obj.mode == "value_and_grad"
        if epochs is None:
            run.history_every = history
            run.on_iteration = self.after_iteration
        else:
            run.history_every = None
            run.on_iteration = self.update_bar if progress else None
            run.on_epoch = self.after_epoch if history else None

    def after_iteration(self):
        """Full batches: record every ``k`` iterations, refresh the bar."""
        run = self.run
        nit = run.nit
        if self.every is not None and nit % self.every == 0 and (
                not self.nit or self.nit[-1] != nit):
            self.nit.append(nit)
            self.fun.append(run.value())
        self.update_bar()

    def after_epoch(self, epochs):
        if epochs.epoch % self.every == 0:
            self.nit.append(self.run.nit)
            self.fun.append(epochs.losses[-1])
            self.epoch.append(epochs.epoch)

    def update_bar(self):
        bar = self.bar
        if bar is None:
            return
        now = time.perf_counter()
        if now - self.last < _REFRESH:
            return
        self.last = now
        bar.n = self.run.nit
        loss = self._loss()
        if loss is not None:
            bar.set_postfix(loss=f"{loss:.6g}", refresh=False)
        bar.refresh()

    def _loss(self):
        """The current loss where it costs nothing: the value the gradient
        call returned (a mini-batch's with batches), or the last recorded."""
        if self.free_loss:
            return self.run.obj.value_at_grad
        return self.fun[-1] if self.fun else None

    def finish(self, res):
        """Close the bar; put the history into the result."""
        if self.bar is not None:
            self.bar.n = res.nit
            if self.free_loss or self.epochs is None:
                self.bar.set_postfix(loss=f"{res.fun:.6g}", refresh=False)
            self.bar.close()
        if self.every is None:
            return
        if self.epochs is None and (not self.nit or self.nit[-1] != res.nit):
            self.nit.append(res.nit)
            self.fun.append(res.fun)
        history = OptimizeResult(nit=np.array(self.nit, dtype=np.int64),
                                 fun=np.array(self.fun, dtype=np.float64))
        if self.epochs is not None:
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
