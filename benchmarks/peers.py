#!/usr/bin/env python
"""rmsopt against its peers: the same RMSProp in NumPy, PyTorch, optax/JAX
and a hand-written numba loop, on the same problems.

One RMSProp everywhere (PyTorch's): ``v = alpha*v + (1-alpha)*g*g;
x -= lr*g/(sqrt(v)+eps)``, lr=1e-3, alpha=0.99, eps=1e-8, float64, gtol=0
(no early stop), v starting at zero.

Small problems (time per iteration)
-----------------------------------
Rosenbrock n=2 and the chained n=100 from (-1.2, 1, -1.2, ...), and least
squares ``f = 0.5*||A x - b||^2`` with A of shape (200, 10), b of shape (200,)
(standard normal, seed 0), x0 = 0. Peers:

rmsopt-nb     rmsopt.minimize, in-place njit ``jac(x, out, *args)``,
              ``driver="nopython"`` (the whole loop compiled)
rmsopt-np     rmsopt.minimize, NumPy jac (``scipy.optimize.rosen_der``,
              ``A.T @ (A @ x - b)``): the python driver
numpy         a plain Python loop: NumPy jac, NumPy update
np-grad       the NumPy jac alone in a Python loop (floor for a Python jac)
torch-ag      torch.optim.RMSprop, gradient from autograd (zero_grad,
              forward, backward, step)
torch-hw      torch.optim.RMSprop, hand-written torch gradient assigned to
              ``.grad`` (no autograd)
optax         optax.rmsprop(lr, decay=0.99, eps=1e-8, eps_in_sqrt=False),
              gradient from jax.grad, inside jax.jit + lax.fori_loop,
              jax_enable_x64
limit         the compiled limit: one @njit loop, gradient written into a
              preallocated buffer by the same njit function rmsopt-nb uses

Every run starts from x0 (setup included: ``minimize`` validation and result,
optimizer construction, ``jnp`` transfer). Before timing, every peer's
iterate after CHECK_ITERS iterations must match the NumPy loop's to
``|x - x_ref| <= CHECK_RTOL * max|x_ref|`` elementwise, and rmsopt-nb must
equal the limit bit for bit; otherwise the script stops.

Large n (the update step alone, n = 1e7 float64)
------------------------------------------------
rmsopt.minimize with an in-place njit jac that fills ``out`` with a constant
on its first call and leaves it unchanged after (so the step dominates), 10
iterations, default options (and ``parallel=False`` too when this rmsopt has
that option); torch's ``optimizer.step()`` on a 1e7 tensor with a fixed
``.grad``; a NumPy in-place update into preallocated buffers; and, as
references, hand-written numba fused loops (serial, and ``parallel=True``)
and the same access pattern with trivial arithmetic, serial and parallel
(the faster of the two in each round is the bandwidth limit). Reported as
effective GB/s = 5*8*n bytes per step (read x, g, v; write x, v). rmsopt's
"step alone" is the per-round difference ``(t(maxiter=11) -
t(maxiter=1)) / 10``: at this n a call's fixed costs (validating and copying
x0, allocating the work arrays, copying x, jac and the state into the
result) are several 80 MB passes, shown in their own row, as is the whole
10-iteration call.

Method (as benchmarks/compare_drivers.py and shared/PERFORMANCE.md): JIT
compilation is warmed up, each case gets an iteration count calibrated to
about ``--target-ms`` per run, and every round times all cases once in a
fresh random order. Reported: the median over rounds of the time per
iteration, and the medians over rounds of the per-round ratios to the limit
and to rmsopt-nb. Quote ratios: the machine is shared and noisy. The
problems, the NumPy loop, the compiled limit, the large-n kernels and the
timing harness are benchmarks/benchmarks/common.py's, shared with
compare_drivers.py and the asv suite.

Run::

    NUMBA_CACHE_DIR=/tmp/nbcache_bench /work/venv/bin/python benchmarks/peers.py
    ... benchmarks/peers.py --quick   # smoke run (< 1 min); writes to a temp dir
    ... benchmarks/peers.py --rst-from benchmarks/peers.md   # tables as reST

Writes benchmarks/peers.md (also printed) and docs/_static/peers.png.

Peers whose packages are missing (torch, jax/optax) are skipped with a
message; without matplotlib no chart is drawn.
"""

import argparse
import functools
import os
import platform
import random
import shlex
import statistics
import sys
import tempfile
import time
import warnings

import numba
import numpy as np

from benchmarks.common import ALPHA, CONSTANT_GRAD, EPS, LR, STEP_KERNELS, \
    Problem, calibrate, constant_grad_out, fmt_time, grad_alone_runner, \
    has_option, interleaved_rounds, limit_runner, minimize_runner, \
    numpy_loop_runner, per_iteration, round_ratios, timed, versions, zero

try:
    import torch
except ImportError as exc:
    torch = None
    print(f"torch not importable ({exc}): skipping the torch peers")
try:
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax
except ImportError as exc:
    jax = None
    print(f"jax/optax not importable ({exc}): skipping the optax peer")
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError as exc:
    plt = None
    print(f"matplotlib not importable ({exc}): no chart")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_MD = os.path.join(HERE, "peers.md")
DEFAULT_PNG = os.path.join(ROOT, "docs", "_static", "peers.png")

CHECK_ITERS = 200
# Least squares reaches its minimum after ~150 iterations and then orbits it
# at a distance of about lr, where RMSProp's normalised step amplifies
# one-ulp differences in the gradient (BLAS vs loop summation order)
# exponentially: 2e-16 after 100 iterations, 3e-11 after 200, 3e-3 after 500.
# So it is checked before that, at 100.
CHECK_ITERS_LSQ = 100
CHECK_RTOL = 1e-12
LARGE_N = 10**7
LARGE_STEPS = 10

PEERS = {
    "rmsopt-nb": "rmsopt, in-place njit jac (nopython driver)",
    "rmsopt-np": "rmsopt, NumPy jac (python driver)",
    "numpy": "plain NumPy loop",
    "np-grad": "NumPy jac alone (floor for a Python jac)",
    "torch-ag": "torch.optim.RMSprop, autograd gradient",
    "torch-hw": "torch.optim.RMSprop, hand-written torch gradient",
    "optax": "optax.rmsprop in jax.jit + lax.fori_loop",
    "limit": "hand-written numba loop (compiled limit)",
}


# -- torch and jax forms of the problems ---------------------------------------------

def torch_rosen(x):
    return torch.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def torch_rosen_der(x):
    """scipy's rosen_der in torch operations."""
    xm, xm_m1, xm_p1 = x[1:-1], x[:-2], x[2:]
    der = torch.empty_like(x)
    der[1:-1] = (200 * (xm - xm_m1 ** 2) - 400 * (xm_p1 - xm ** 2) * xm
                 - 2 * (1 - xm))
    der[0] = -400 * x[0] * (x[1] - x[0] ** 2) - 2 * (1 - x[0])
    der[-1] = 200 * (x[-1] - x[-2] ** 2)
    return der


def torch_lsq(x, A, b):
    r = A @ x - b
    return 0.5 * (r @ r)


def torch_lsq_grad(x, A, b):
    return A.T @ (A @ x - b)


def jax_rosen(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def jax_lsq(x, A, b):
    r = A @ x - b
    return 0.5 * (r @ r)


class PeerProblem(Problem):
    """A shared problem (rosen2, rosen100, lsq200x10) with its torch and jax
    forms and the length of its check."""

    def __init__(self, name):
        super().__init__(name)
        rosen = self.kind == "rosen"
        self.torch_loss, self.torch_grad = (
            (torch_rosen, torch_rosen_der) if rosen
            else (torch_lsq, torch_lsq_grad))
        self.jax_loss = None if jax is None else (
            jax_rosen if rosen else jax_lsq)
        self.check_iters = CHECK_ITERS if rosen else CHECK_ITERS_LSQ


def problems():
    return [PeerProblem(name) for name in ("rosen2", "rosen100", "lsq200x10")]


# -- the peers: each maker returns run(n_iter) -> final x as a NumPy array ------

def make_torch(p, autograd):
    """torch.optim.RMSprop with the gradient from autograd (zero_grad,
    forward, backward, step) or hand-written and assigned to ``.grad``."""
    targs = tuple(torch.from_numpy(a) for a in p.args)
    loss_fn, grad_fn = p.torch_loss, p.torch_grad

    def run(n_iter):
        x = torch.tensor(p.x0, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.RMSprop([x], lr=LR, alpha=ALPHA, eps=EPS)
        if autograd:
            for _ in range(n_iter):
                opt.zero_grad()
                loss_fn(x, *targs).backward()
                opt.step()
        else:
            with torch.no_grad():
                for _ in range(n_iter):
                    x.grad = grad_fn(x, *targs)
                    opt.step()
        return x.detach().numpy()
    return run


def make_optax(p, eps_in_sqrt=False):
    opt = optax.rmsprop(LR, decay=ALPHA, eps=EPS, eps_in_sqrt=eps_in_sqrt)
    grad_fn = jax.grad(p.jax_loss)

    @jax.jit
    def solve(x0, n_iter, args):
        def body(_, carry):
            x, state = carry
            g = grad_fn(x, *args)
            updates, state = opt.update(g, state, x)
            return optax.apply_updates(x, updates), state
        return jax.lax.fori_loop(0, n_iter, body, (x0, opt.init(x0)))[0]

    jargs = tuple(jnp.asarray(a) for a in p.args)

    def run(n_iter):
        x = solve(jnp.asarray(p.x0), n_iter, jargs)
        return np.asarray(x.block_until_ready())
    return run


def peer_makers():
    makers = {
        "rmsopt-nb": lambda p: minimize_runner(
            p.fun, p.x0, p.grad["njit_out"], p.args, driver="nopython"),
        "rmsopt-np": lambda p: minimize_runner(p.fun, p.x0, p.grad["numpy"],
                                               p.args),
        "numpy": lambda p: numpy_loop_runner(p.grad["numpy"], p.x0, p.args),
        "np-grad": lambda p: grad_alone_runner(p.grad["numpy"], p.x0,
                                               p.args),
        "limit": lambda p: limit_runner(p.grad["njit_out"], p.x0, p.args),
    }
    if torch is not None:
        makers["torch-ag"] = functools.partial(make_torch, autograd=True)
        makers["torch-hw"] = functools.partial(make_torch, autograd=False)
    if jax is not None:
        makers["optax"] = make_optax
    return {k: makers[k] for k in PEERS if k in makers}


# -- checks and timing ----------------------------------------------------------------

def deviation(x, ref):
    """max |x - ref| / max |ref|."""
    return np.abs(np.asarray(x, dtype=np.float64) - ref).max() / \
        np.abs(ref).max()


def check(p, runners):
    """Every peer's x after ``p.check_iters`` iterations against the NumPy
    loop's, to CHECK_RTOL; rmsopt-nb and the limit bit-identical. As a
    control, optax with its default eps placement (inside the sqrt) must
    fail the same check. Returns a line of notes."""
    iters = p.check_iters
    ref = runners["numpy"](iters)
    notes = []
    for k, run in runners.items():
        if k in ("numpy", "np-grad"):
            continue
        x = run(iters)
        dev = deviation(x, ref)
        if not dev <= CHECK_RTOL:
            raise AssertionError(
                f"{p.label}: {k} disagrees with the NumPy loop after {iters} "
                f"iterations: max |x - x_ref| / max |x_ref| = {dev:.3e} > "
                f"{CHECK_RTOL:g}\n{k}: {x}\nnumpy: {ref}")
        notes.append(f"{k} {'bit-identical' if dev == 0 else f'{dev:.1e}'}")
    if not np.array_equal(runners["rmsopt-nb"](iters),
                          runners["limit"](iters)):
        raise AssertionError(f"{p.label}: rmsopt-nb and the compiled limit "
                             f"run the same gradient and rule but differ")
    if jax is not None:
        dev = deviation(make_optax(p, eps_in_sqrt=True)(iters), ref)
        if dev <= CHECK_RTOL:
            raise AssertionError(f"{p.label}: the check cannot tell eps "
                                 f"inside the sqrt from outside ({dev:.1e})")
        notes.append(f"control (optax, eps inside sqrt) {dev:.1e}: rejected")
    return f"after {iters} iterations vs the NumPy loop: " + ", ".join(notes)


def bench_small(args, rng):
    runners, counts, notes = {}, {}, {}
    makers = peer_makers()
    for p in problems():
        name = p.label
        runners[name] = {k: make(p) for k, make in makers.items()}
        t0 = time.perf_counter()
        for run in runners[name].values():
            run(10)       # compiles (or loads from cache) every kernel
        warm = time.perf_counter() - t0
        notes[name] = check(p, runners[name])
        print(f"{name}: warm-up {warm:.2f} s; check {notes[name]}")
        counts[name] = {k: calibrate(run, args.target_ms / 1e3)
                        for k, run in runners[name].items()}
    per_iter = interleaved_rounds(
        {(name, k): per_iteration(run, counts[name][k])
         for name in runners for k, run in runners[name].items()},
        args.rounds, rng,
        progress=lambda r: print(f"  round {r}/{args.rounds} done"),
        collect=True)
    to_limit = round_ratios(per_iter, lambda key: (key[0], "limit"))
    to_rmsopt = round_ratios(per_iter, lambda key: (key[0], "rmsopt-nb"))
    med = statistics.median
    rows = []
    for (name, k), ts in per_iter.items():
        rows.append(dict(problem=name, peer=k, iters=counts[name][k],
                         t=med(ts), tmin=min(ts), tmax=max(ts),
                         limit=med(to_limit[name, k]),
                         rmsopt=med(to_rmsopt[name, k])))
    return rows


# -- large n ---------------------------------------------------------------------------

def numpy_step(x, g, v, tmp):
    v *= ALPHA
    np.multiply(g, g, out=tmp)
    tmp *= 1.0 - ALPHA
    v += tmp
    np.sqrt(v, out=tmp)
    tmp += EPS
    np.divide(g, tmp, out=tmp)
    tmp *= LR
    x -= tmp


LARGE = {
    "rmsopt-step": "rmsopt.minimize, default options, step alone: "
                   "(t(11 it) − t(1 it)) / 10",
    "rmsopt-step-serial": "rmsopt.minimize parallel=False, step alone",
    "rmsopt-call": "rmsopt.minimize, whole call of 10 iterations / 10",
    "rmsopt-fixed": "rmsopt.minimize, fixed cost of a call (maxiter=1)",
    "torch": "torch.optim.RMSprop.step() (defaults: foreach=None)",
    "torch-1thread": "torch.optim.RMSprop.step(), torch.set_num_threads(1)",
    "numpy": "NumPy in-place ufuncs, preallocated temporary",
    "numba-serial": "hand-written numba fused loop, serial",
    "numba-parallel": "hand-written numba fused loop, parallel=True",
    "bandwidth-serial": "same access pattern, trivial arithmetic, serial",
    "bandwidth-parallel": "same access pattern, trivial arithmetic, "
                          "parallel=True",
}
DIFFERENTIAL = ("rmsopt-step", "rmsopt-step-serial")


def bench_large(args, rng):
    n, steps = args.large_n, LARGE_STEPS
    x0 = np.random.default_rng(1).standard_normal(n)
    g = np.full(n, CONSTANT_GRAD)   # what constant_grad_out gives rmsopt
    serial = has_option("parallel")
    if not serial:
        print("this rmsopt has no 'parallel' option: no serial rmsopt row")

    def rmsopt_run(maxiter, **extra):
        run = minimize_runner(zero, x0, constant_grad_out, driver="nopython",
                              **extra)
        return functools.partial(run, maxiter)

    def numpy_run():
        x, v, tmp = x0.copy(), np.zeros(n), np.empty(n)

        def run():
            for _ in range(steps):
                numpy_step(x, g, v, tmp)
            return x
        return run

    def numba_run(name, parallel):
        kernel = STEP_KERNELS[parallel][name]
        x, v = x0.copy(), np.zeros(n)

        def run():
            kernel(x, g, v, LR, ALPHA, 1.0 - ALPHA, EPS, steps)
            return x
        return run

    def torch_run():
        p = torch.tensor(x0, dtype=torch.float64)
        p.grad = torch.from_numpy(g)
        opt = torch.optim.RMSprop([p], lr=LR, alpha=ALPHA, eps=EPS)

        def run():
            for _ in range(steps):
                opt.step()
            return p.numpy()
        return run

    def torch_1thread(run):
        def one():
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return run()
            finally:
                torch.set_num_threads(threads)
        return one

    # Check: `steps` steps from x0 with fresh state agree with NumPy's.
    ref = numpy_run()().copy()
    fresh = {"rmsopt": rmsopt_run(steps)(),
             "numba-serial": numba_run("fused_rmsprop", False)(),
             "numba-parallel": numba_run("fused_rmsprop", True)()}
    if serial:
        fresh["rmsopt parallel=False"] = rmsopt_run(steps, parallel=False)()
    if torch is not None:
        fresh["torch"] = torch_run()()
    notes = []
    for k, x in fresh.items():
        dev = deviation(x, ref)
        if not dev <= CHECK_RTOL:
            raise AssertionError(f"large n: {k} vs NumPy after {steps} "
                                 f"steps: deviation {dev:.2e}")
        notes.append(f"{k} {'bit-identical' if dev == 0 else f'{dev:.1e}'}")
    print(f"large n={n:.0e}: check after {steps} steps vs NumPy "
          f"(max |x - x_ref| / max |x_ref| <= {CHECK_RTOL:g}): "
          f"{', '.join(notes)}")
    del fresh, ref

    cases = {
        "rmsopt-long": rmsopt_run(steps + 1),
        "rmsopt-fixed": rmsopt_run(1),
        "rmsopt-call": rmsopt_run(steps),
        "numpy": numpy_run(),
        "numba-serial": numba_run("fused_rmsprop", False),
        "numba-parallel": numba_run("fused_rmsprop", True),
        "bandwidth-serial": numba_run("same_traffic", False),
        "bandwidth-parallel": numba_run("same_traffic", True),
    }
    if serial:
        cases["rmsopt-long-serial"] = rmsopt_run(steps + 1, parallel=False)
        cases["rmsopt-fixed-serial"] = rmsopt_run(1, parallel=False)
    if torch is not None:
        cases["torch"] = torch_run()
        cases["torch-1thread"] = torch_1thread(torch_run())
    for run in cases.values():
        run()     # warm-up: compile, create torch's state, touch pages
    times = interleaved_rounds(
        {k: functools.partial(timed, run) for k, run in cases.items()},
        args.rounds, rng,
        progress=lambda r: print(f"  large n: round {r}/{args.rounds} done"),
        collect=True)
    # Per step, per round. The rmsopt "step alone" rows are per-round
    # differences of two calls, so no min-max is shown for them.
    per_step = {k: [t / steps for t in times[k]] for k in
                ("rmsopt-call", "numpy", "numba-serial", "numba-parallel",
                 "bandwidth-serial", "bandwidth-parallel", "torch",
                 "torch-1thread")
                if k in times}
    # The bandwidth limit: the faster of the two trivial loops, per round
    # (threads lose on a loaded machine, see docs/peers.rst).
    limit = [min(a, b) for a, b in zip(per_step["bandwidth-serial"],
                                       per_step["bandwidth-parallel"])]
    per_step["rmsopt-fixed"] = times["rmsopt-fixed"]   # per call
    for k, long, short in (("rmsopt-step", "rmsopt-long", "rmsopt-fixed"),
                           ("rmsopt-step-serial", "rmsopt-long-serial",
                            "rmsopt-fixed-serial")):
        if long in times:
            per_step[k] = [(a - b) / steps
                           for a, b in zip(times[long], times[short])]
    med = statistics.median
    nbytes = 5 * 8 * n
    rows = []
    for k in LARGE:
        if k not in per_step:
            continue
        ts = per_step[k]
        rows.append(dict(
            peer=k, t=med(ts),
            gbs=None if k == "rmsopt-fixed" else nbytes / med(ts) / 1e9,
            gbs_lo=None if k in DIFFERENTIAL or k == "rmsopt-fixed"
            else nbytes / max(ts) / 1e9,
            gbs_hi=None if k in DIFFERENTIAL or k == "rmsopt-fixed"
            else nbytes / min(ts) / 1e9,
            rmsopt=med(ts) / med(per_step["rmsopt-step"]),
            bw=med(ts) / med(limit)))
    return rows


# -- report ---------------------------------------------------------------------------

def machine():
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break     # the first CPU is enough
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    model = info.get("model name", "unknown CPU")
    if "cpu family" in info and "model" in info:
        model += f" (family {info['cpu family']}, model {info['model']})"
    flags = set(info.get("flags", "").split())
    simd = "AVX-512" if "avx512f" in flags else (
        "AVX2" if "avx2" in flags else "no AVX2")
    l3 = ""
    try:
        with open("/sys/devices/system/cpu/cpu0/cache/index3/size") as f:
            l3 = f", L3 {f.read().strip()}"
    except OSError:
        pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count()
    return (f"{model}, {cpus} CPUs usable ({os.cpu_count()} online), {simd}"
            f"{l3}; {platform.system()} {platform.release()}")


def peer_versions():
    """The shared versions line and the peers' packages, numba's threads."""
    parts = [versions()]
    if torch is not None:
        parts.append(f"torch {torch.__version__} "
                     f"({torch.get_num_threads()} threads)")
    if jax is not None:
        parts.append(f"jax {jax.__version__}")
        parts.append(f"optax {optax.__version__}")
    if plt is not None:
        parts.append(f"matplotlib {matplotlib.__version__}")
    return ", ".join(parts) + f"; numba threads {numba.get_num_threads()}"


def source():
    """rmsopt's git commit, and whether its files differ from it."""
    import subprocess
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short",
                               "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain",
                                "--", "rmsopt"], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "rmsopt source: not a git checkout"
    return (f"rmsopt source: commit {head}"
            f"{' + uncommitted changes in rmsopt/' if dirty else ''}")


def load():
    try:
        return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "load average unknown"


def command():
    env = "".join(f"{k}={os.environ[k]} " for k in ("NUMBA_CACHE_DIR",)
                  if k in os.environ)
    script = os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)
    return (f"{env}{shlex.quote(sys.executable)} {script} "
            f"{' '.join(shlex.quote(a) for a in sys.argv[1:])}").strip()


def markdown(small, large, header, args):
    lines = ["# rmsopt and its peers: RMSProp time per iteration", ""]
    lines += [f"- {h}" for h in header] + [""]
    lines += ["## Small problems: time per iteration", "",
              f"Median over {args.rounds} rounds; ratios are medians of "
              "per-round ratios (> 1: slower than the limit / than rmsopt).",
              "",
              "| problem | peer | iterations per run | time per iteration "
              "| min–max | × compiled limit | × rmsopt (nopython) |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for r in small:
        lines.append(
            f"| {r['problem']} | {PEERS[r['peer']]} | {r['iters']:,} | "
            f"{fmt_time(r['t'])} | {fmt_time(r['tmin'])} – "
            f"{fmt_time(r['tmax'])} | {r['limit']:.2f}× | {r['rmsopt']:.2f}× |")
    if large:
        n = args.large_n
        lines += ["", f"## Large n: the update step alone, n = {n:.0e} "
                  f"float64", "",
                  f"Effective GB/s = 5 × 8 × n bytes per step (read x, g, v; "
                  f"write x, v) / time per step; median over {args.rounds} "
                  f"rounds of {LARGE_STEPS} steps. rmsopt's step alone is "
                  f"the median of per-round differences t(maxiter="
                  f"{LARGE_STEPS + 1}) − t(maxiter=1), so it has no "
                  f"min–max; the fixed-cost row is per call, not per step. "
                  f"The bandwidth limit is the faster of the two trivial "
                  f"loops in each round. Ratios here are ratios of medians "
                  f"(a per-round ratio to a difference of two calls is too "
                  f"noisy).",
                  "",
                  "| peer | time per step | effective GB/s | min–max GB/s "
                  "| × rmsopt step | × bandwidth limit |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in large:
            gbs = "—" if r["gbs"] is None else f"{r['gbs']:.1f}"
            rng_ = ("—" if r["gbs_lo"] is None
                    else f"{r['gbs_lo']:.1f} – {r['gbs_hi']:.1f}")
            lines.append(
                f"| {LARGE[r['peer']]} | {r['t'] * 1e3:.2f} ms | {gbs} | "
                f"{rng_} | {r['rmsopt']:.2f}× | {r['bw']:.2f}× |")
    return "\n".join(lines) + "\n"


def chart(small, large, path, title, large_n):
    names = list(dict.fromkeys(r["problem"] for r in small))
    peers = list(dict.fromkeys(r["peer"] for r in small))
    t = {(r["problem"], r["peer"]): r["t"] * 1e6 for r in small}
    fig, axes = plt.subplots(
        1, 2 if large else 1, figsize=(13 if large else 9, 5.6),
        gridspec_kw=dict(width_ratios=[2.2, 1] if large else [1]),
        squeeze=False)
    ax = axes[0, 0]
    width = 0.8 / len(peers)
    cmap = plt.get_cmap("tab10")
    for j, k in enumerate(peers):
        xs = [i + (j - (len(peers) - 1) / 2) * width for i in range(len(names))]
        ax.bar(xs, [t[name, k] for name in names], width, label=k,
               color=cmap(j))
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("time per iteration (µs, log scale)")
    ax.set_title("small problems: time per iteration (lower is better)")
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=4, loc="upper center",
              bbox_to_anchor=(0.5, -0.08))
    if large:
        large = [r for r in large if r["gbs"] is not None]
        ax = axes[0, 1]
        labels = [r["peer"] for r in large]
        ax.barh(range(len(large)), [r["gbs"] for r in large],
                color=[cmap(1) if k.startswith("rmsopt") else cmap(7)
                       for k in labels])
        ax.set_yticks(range(len(large)), labels)
        ax.invert_yaxis()
        ax.set_xlabel("effective GB/s (higher is better)")
        ax.set_title(f"update step alone, n = {large_n:.0e} float64")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown_to_rst(text):
    """The Markdown tables of a peers.md as reST list-tables (printed by
    ``--rst-from``, pasted into docs/peers.rst)."""
    out, table = [], []

    def esc(text):
        """Escape reST markup outside ``literal`` parts."""
        parts = text.replace("`", "``").split("``")
        for i in range(0, len(parts), 2):
            parts[i] = parts[i].replace("|", "\\|").replace("*", "\\*")
        return "``".join(parts)

    def flush():
        if not table:
            return
        rows = [[esc(c.strip()) for c in line.strip("|").split("|")]
                for line in table if not set(line) <= set("|-: ")]
        out.extend([".. list-table::", "   :header-rows: 1", ""])
        for row in rows:
            out.append(f"   * - {row[0]}")
            out.extend(f"     - {c}" for c in row[1:])
        out.append("")
        table.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("#"):
            title = line.lstrip("#").strip()
            out.extend([title, "-" * len(title)])
        else:
            out.append(esc(line))
    flush()
    return "\n".join(out) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--target-ms", type=float, default=50.0,
                        help="aimed-at duration of one timed run")
    parser.add_argument("--large-n", type=int, default=LARGE_N)
    parser.add_argument("--no-large", action="store_true",
                        help="skip the large-n rows")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 rounds of ~5 ms runs, n=1e6, "
                             "output to a temp dir unless --md/--png given")
    parser.add_argument("--md", default=None,
                        help=f"Markdown table (default {DEFAULT_MD})")
    parser.add_argument("--png", default=None,
                        help=f"bar chart (default {DEFAULT_PNG})")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--rst-from", metavar="MD", default=None,
                        help="only print the tables of MD (a peers.md) as "
                             "reST list-tables, for docs/peers.rst")
    args = parser.parse_args(argv)
    if args.rst_from:
        with open(args.rst_from) as f:
            print(markdown_to_rst(f.read()), end="")
        return 0
    if args.quick:
        args.rounds, args.target_ms = min(args.rounds, 2), 5.0
        args.large_n = min(args.large_n, 10**6)
        tmp = tempfile.gettempdir()
        args.md = args.md or os.path.join(tmp, "rmsopt_peers_quick.md")
        args.png = args.png or os.path.join(tmp, "rmsopt_peers_quick.png")
    args.md = args.md or DEFAULT_MD
    args.png = args.png or DEFAULT_PNG
    rng = random.Random(args.seed)
    started = time.perf_counter()
    load_start = load()

    header = [f"machine: {machine()}",
              f"versions: {peer_versions()}; {source()}",
              f"command: `{command()}`",
              f"rule: PyTorch's RMSprop, lr={LR}, alpha={ALPHA}, eps={EPS}, "
              f"float64, gtol=0; {args.rounds} rounds, cases in random order "
              f"each round, runs of ~{args.target_ms:g} ms",
              f"check: after {CHECK_ITERS} iterations ({CHECK_ITERS_LSQ} for "
              f"least squares) every peer's x is within {CHECK_RTOL:g} × "
              f"max|x| of the NumPy loop's (elementwise); rmsopt (nopython) "
              f"equals the compiled limit bit for bit"
              + ("; optax with eps inside the sqrt fails it (control)"
                 if jax is not None else "")]
    print("\n".join(header) + "\n")
    small = bench_small(args, rng)
    large = [] if args.no_large else bench_large(args, rng)
    elapsed = time.perf_counter() - started
    header.insert(1, f"{load_start} at the start, {load()} at the end "
                  f"(1, 5, 15 min; {os.cpu_count()} CPUs)")
    header.append(f"run time: {elapsed:.0f} s"
                  f"{' (quick smoke run)' if args.quick else ''}")
    text = markdown(small, large, header, args)
    print("\n" + text)
    os.makedirs(os.path.dirname(os.path.abspath(args.md)), exist_ok=True)
    with open(args.md, "w") as f:
        f.write(text)
    print(f"wrote {args.md}")
    if plt is not None:
        chart(small, large, args.png,
              f"RMSProp (PyTorch's rule), float64 — {machine()}", args.large_n)
        print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    warnings.simplefilter("error", RuntimeWarning)
    sys.exit(main())
