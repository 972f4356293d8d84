"""``rmsopt.curve_fit``: scipy's curve_fit, solved with RMSProp.

An exponential decay ``a exp(-b x) + c`` fitted to noisy data with known
standard deviations. ``popt`` and ``pcov`` agree with
``scipy.optimize.curve_fit``'s; the figure (``curve_fit.png``, in
``$RMSOPT_FIGURE_DIR`` or the current folder) shows the data, the fit and a
band of one standard deviation of the fitted curve from ``pcov``.

Run: ``python examples/curve_fit.py`` (needs matplotlib)
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import scipy.optimize  # noqa: E402

import rmsopt  # noqa: E402


def decay(x, a, b, c):
    return a * np.exp(-b * x) + c


rng = np.random.default_rng(1)
x = np.linspace(0, 5, 40)
sigma = 0.05 + 0.05 * x / 5
y = decay(x, 2.0, 0.9, 0.4) + sigma * rng.standard_normal(x.size)

popt, pcov = rmsopt.curve_fit(decay, x, y, p0=[1, 1, 1], sigma=sigma,
                              absolute_sigma=True)
ref, ref_cov = scipy.optimize.curve_fit(decay, x, y, p0=[1, 1, 1],
                                        sigma=sigma, absolute_sigma=True)
err = np.sqrt(np.diag(pcov))
for name, value, e, r in zip("abc", popt, err, ref):
    print(f"{name} = {value:.5f} +- {e:.5f}   (scipy {r:.5f})")
print(f"max relative difference: popt {np.abs(popt / ref - 1).max():.1e}, "
      f"pcov {np.abs(pcov - ref_cov).max() / np.abs(ref_cov).max():.1e}")
assert np.allclose(popt, ref, rtol=1e-5)
assert np.abs(pcov - ref_cov).max() < 1e-3 * np.abs(ref_cov).max()

# One standard deviation of the fitted curve: J pcov J^T on a fine grid.
grid = np.linspace(0, 5, 200)
h = 1e-6
J = np.column_stack([(decay(grid, *(popt + h * e)) - decay(grid, *popt)) / h
                     for e in np.eye(3)])
band = np.sqrt(np.einsum("ij,jk,ik->i", J, pcov, J))
fit = decay(grid, *popt)
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.errorbar(x, y, sigma, fmt="o", ms=3, lw=1, label="data")
ax.plot(grid, fit, label="rmsopt.curve_fit")
ax.fill_between(grid, fit - band, fit + band, alpha=0.3, label="1 sd")
ax.set_xlabel("x")
ax.set_ylabel("y")
ax.set_title(r"$a\,e^{-bx} + c$")
ax.legend(fontsize=8)
fig.tight_layout()
path = os.path.join(os.environ.get("RMSOPT_FIGURE_DIR", "."), "curve_fit.png")
fig.savefig(path, dpi=80)
print(f"figure: {path}")
