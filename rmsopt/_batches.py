r"""Mini-batches: the ``batch`` option and the epoch source (pure Python).

``options={"batch": {"args": (0, 1), "size": 32}}`` says that ``args[0]``
and ``args[1]`` hold samples along their first axis. Each iteration then
calls the gradient on the next ``size`` samples of every one of them
(the other ``args`` unchanged); an epoch is one pass over the samples, the
last batch possibly smaller, as PyTorch's ``DataLoader``. With ``shuffle``
each epoch draws a permutation from ``numpy.random.default_rng(seed)`` and
the data arrays are copied once in that order (the user's arrays are never
touched): every batch is then a contiguous slice of the copy, zero-copy in
both drivers, so the same seed gives the same bits through either.

RMSProp never converges on a mini-batch gradient: the kernels run with the
gradient test off, and after the last iteration the gradient and the value
are computed on all the data, once; ``res.jac`` and ``res.fun`` are those,
and ``success`` means that full gradient is within ``gtol`` or that the
plateau test stopped the run.

The plateau test (``patience``) watches the mean mini-batch loss of each
epoch (the objective must return it: ``jac=True``), and stops after
``patience`` epochs without a decrease of more than ``min_delta`` below the
best, like Keras' ``EarlyStopping``.

The host run (:mod:`rmsopt._drive`) takes an :class:`Epochs` as an optional
input of its one python and one nopython driver; the compiled loop of
:mod:`rmsopt._cpu` slices the batches itself.
"""

import math
import numbers
from typing import NamedTuple

import numpy as np

_KEYS = ("args", "size", "shuffle", "seed", "epochs", "patience",
         "min_delta")


class Batches(NamedTuple):
    """A validated ``batch`` option."""

    positions: tuple   # indices into args of the data arrays
    size: int
    shuffle: bool
    seed: object
    epochs: object     # int or None
    patience: object   # int or None
    min_delta: float
    n_samples: int

    @property
    def per_epoch(self):
        return -(-self.n_samples // self.size)


def _count(name, value, low, allow_none=True):
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, numbers.Integral) or value < low:
        raise ValueError(f"batch[{name!r}] must be an integer >= {low}"
                         f"{' or None' if allow_none else ''}, got {value!r}")
    return int(value)


def parse_batches(spec, args):
    """Check the ``batch`` option against ``args``; a :class:`Batches`."""
    if not isinstance(spec, dict):
        raise TypeError("options['batch'] must be a dict such as "
                        "{'args': (0, 1), 'size': 32}, got "
                        f"{type(spec).__name__}")
    unknown = sorted(set(spec) - set(_KEYS))
    if unknown:
        raise ValueError(f"Unknown keys in options['batch']: "
                         f"{', '.join(map(repr, unknown))}; expected "
                         f"{', '.join(_KEYS)}")
    if "args" not in spec or "size" not in spec:
        raise ValueError("options['batch'] needs 'args' (the positions in "
                         "args of the data arrays) and 'size'")
    positions = spec["args"]
    if isinstance(positions, numbers.Integral):
        positions = (positions,)
    try:
        positions = tuple(positions)
    except TypeError as exc:
        raise TypeError("batch['args'] must be a tuple of positions in args"
                        ) from exc
    if not positions:
        raise ValueError("batch['args'] must name at least one argument")
    for p in positions:
        if isinstance(p, (bool, np.bool_)) or not isinstance(
                p, numbers.Integral) or not 0 <= p < len(args):
            raise ValueError(f"batch['args'] holds {p!r}, not a position in "
                             f"args (which has {len(args)} items)")
    if len(set(positions)) != len(positions):
        raise ValueError("batch['args'] names a position twice")
    positions = tuple(sorted(int(p) for p in positions))
    lengths = set()
    for p in positions:
        a = args[p]
        if not isinstance(a, np.ndarray) or a.ndim == 0:
            raise TypeError(f"args[{p}] is a data argument of the batches: "
                            "it must be a NumPy array with a first axis, got "
                            f"{type(a).__name__}")
        lengths.add(a.shape[0])
    if len(lengths) != 1:
        raise ValueError("the data arrays of the batches must have the same "
                         f"length along their first axis, got "
                         f"{sorted(lengths)}")
    n_samples = lengths.pop()
    if n_samples == 0:
        raise ValueError("the data arrays of the batches are empty")
    size = _count("size", spec["size"], 1, allow_none=False)
    if size > n_samples:
        raise ValueError(f"batch['size']={size} is larger than the "
                         f"{n_samples} samples")
    shuffle = spec.get("shuffle", True)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"batch['shuffle'] must be True or False, got "
                        f"{shuffle!r}")
    seed = spec.get("seed", 0)
    try:
        np.random.default_rng(seed)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"batch['seed'] must be what numpy.random."
                         f"default_rng accepts, got {seed!r}") from exc
    min_delta = spec.get("min_delta", 0.0)
    if isinstance(min_delta, bool) or not isinstance(
            min_delta, numbers.Real) or not (math.isfinite(min_delta)
                                             and min_delta >= 0):
        raise ValueError(f"batch['min_delta'] must be a finite number >= 0,"
                         f" got {min_delta!r}")
    return Batches(positions, size, bool(shuffle), seed,
                   _count("epochs", spec.get("epochs"), 1),
                   _count("patience", spec.get("patience"), 1),
                   float(min_delta), n_samples)


class Epochs:
    """The epoch loop shared by both drivers: shuffled copies, positions,
    the plateau test. Everything it decides is computed in Python, once per
    epoch, the same way for both drivers.

    ``snapshot`` and ``resume`` carry a run over to the next exactly: the
    epochs started, the position in the current one, the shuffle stream and
    the plateau test's memory travel in ``res.state['batches']``.
    """

    def __init__(self, spec, args):
        self.spec = spec
        self.args = args
        self.resumed = None  # the snapshot this run continues, if any
        self.restart()

    def restart(self):
        """From the first epoch again (the same orders), or from where the
        run it continues stopped."""
        spec = self.spec
        self.rng = np.random.default_rng(spec.seed)
        self.order = None       # this epoch's permutation (None: in order)
        self.resume_order = None  # the order of the epoch a run resumes
        self.epoch = 0          # epochs started, earlier runs' included
        self.started = 0        # epochs started by this run
        self.resume_at = None   # (position, loss sum) to continue from
        self.best = math.inf
        self.wait = 0
        self.plateaued = False
        self.losses = []        # mean mini-batch loss of each epoch
        self.data = None        # this epoch's args (data arrays reordered)
        if self.resumed is not None:
            self.resume(self.resumed)

    def start(self):
        """Draw this epoch's order."""
        spec = self.spec
        order, self.resume_order = self.resume_order, None
        if order is None and spec.shuffle:
            order = self.rng.permutation(spec.n_samples)
        self.order = order
        data = list(self.args)
        for p in spec.positions:
            a = self.args[p]
            data[p] = (np.ascontiguousarray(a) if order is None
                       else np.ascontiguousarray(a[order]))
        self.data = tuple(data)
        self.epoch += 1
        self.started += 1

    def batch_args(self, pos):
        """The arguments of batch ``pos`` of this epoch: slices (views)."""
        size = self.spec.size
        start = pos * size
        stop = min(start + size, self.spec.n_samples)
        data = list(self.data)
        for p in self.spec.positions:
            data[p] = data[p][start:stop]
        return tuple(data)

    def first_batch(self):
        """Arguments typed as every batch's (contiguous slices), before any
        epoch has started."""
        data = list(self.args)
        for p in self.spec.positions:
            data[p] = np.ascontiguousarray(data[p][:self.spec.size])
        return tuple(data)

    def end(self, loss_sum):
        """At the end of an epoch: record its mean loss (NaN when the
        gradient calls do not give it), run the plateau test. Returns True
        when the run should stop."""
        spec = self.spec
        loss = loss_sum / spec.per_epoch
        self.losses.append(loss)
        if spec.patience is not None:
            if loss < self.best - spec.min_delta:
                self.best, self.wait = loss, 0
            else:
                self.wait += 1
                if self.wait >= spec.patience:
                    self.plateaued = True
                    return True
        return spec.epochs is not None and self.started >= spec.epochs

    def snapshot(self, pos, loss_sum):
        """The state to continue from: within the epoch at batch ``pos``
        (whose gradient was computed; ``loss_sum`` counts it), or, past its
        end, from the next epoch."""
        spec = self.spec
        within = 0 < pos < spec.per_epoch
        return {"size": spec.size, "n_samples": spec.n_samples,
                "shuffle": spec.shuffle, "epoch": self.epoch,
                "pos": pos if within else 0,
                "loss_sum": float(loss_sum) if within else 0.0,
                "order": self.order if within else None,
                "rng": self.rng.bit_generator.state,
                "best": self.best, "wait": self.wait}

    def resume(self, snapshot):
        """Continue a previous run from its :meth:`snapshot`."""
        spec = self.spec
        if not isinstance(snapshot, dict) or not {
                "size", "n_samples", "shuffle", "epoch", "pos", "loss_sum",
                "order", "rng", "best", "wait"} <= set(snapshot):
            raise TypeError("state['batches'] must be the `state['batches']` "
                            "of a previous rmsopt result")
        made = (snapshot["size"], snapshot["n_samples"], snapshot["shuffle"])
        if made != (spec.size, spec.n_samples, spec.shuffle):
            raise ValueError(
                f"options['state'] continues a run with batches of size "
                f"{made[0]} over {made[1]} samples (shuffle={made[2]}); "
                f"this run has size {spec.size} over {spec.n_samples} "
                f"(shuffle={spec.shuffle}): continue with the same "
                "batches, or drop state['batches'] to start new epochs")
        self.resumed = snapshot
        self.rng.bit_generator.state = snapshot["rng"]
        pos = int(snapshot["pos"])
        # within an epoch, start() takes up its order again (the stream is
        # past it already)
        self.epoch = int(snapshot["epoch"]) - (1 if pos else 0)
        self.resume_order = snapshot["order"] if pos else None
        self.resume_at = (pos, snapshot["loss_sum"]) if pos else None
        self.best, self.wait = float(snapshot["best"]), int(snapshot["wait"])


def mask_of(spec, n_args):
    """The data positions encoded in a tuple's type: 0 (slice) or None."""
    return tuple(0 if i in spec.positions else None for i in range(n_args))
