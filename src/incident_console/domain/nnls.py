"""Non-negative least squares on the normal equations (Lawson and Hanson), in plain Python.

The leak estimator's systems are small (a column per route, 50 or so) and tall (an interval
per row, a few thousand): it keeps the Gram matrix ``G = X'X`` and ``c = X'y`` and solves

    minimise |y - X b|^2   subject to   b_j >= 0 for every j not in `free`

on them, so the cost per solve depends on the routes, not on the rows. No numpy (it is not a
dependency of this project).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

__all__ = ["cholesky_solve", "inverse_diagonal", "nnls_gram"]

Matrix = Sequence[Sequence[float]]


def _cholesky(a: list[list[float]]) -> list[list[float]] | None:
    n = len(a)
    low = [[0.0] * n for _ in range(n)]
    for i in range(n):
        row_i = low[i]
        for j in range(i + 1):
            row_j = low[j]
            s = a[i][j] - sum(row_i[k] * row_j[k] for k in range(j))
            if i == j:
                if s <= 0.0:
                    return None
                row_i[i] = math.sqrt(s)
            else:
                row_i[j] = s / row_j[j]
    return low


def _factor(g: Matrix, idx: Sequence[int]) -> list[list[float]]:
    """Cholesky factor of G[idx, idx], with a ridge grown until it factors (collinear routes)."""
    sub = [[float(g[i][j]) for j in idx] for i in idx]
    scale = max((sub[k][k] for k in range(len(idx))), default=1.0) or 1.0
    ridge = 0.0
    while True:
        trial = [row[:] for row in sub]
        for k in range(len(idx)):
            trial[k][k] += ridge
        low = _cholesky(trial)
        if low is not None:
            return low
        ridge = scale * 1e-12 if ridge == 0.0 else ridge * 100.0


def _solve_factored(low: list[list[float]], b: Sequence[float]) -> list[float]:
    n = len(low)
    z = [0.0] * n
    for i in range(n):
        z[i] = (b[i] - sum(low[i][k] * z[k] for k in range(i))) / low[i][i]
    x = [0.0] * n
    for i in reversed(range(n)):
        x[i] = (z[i] - sum(low[k][i] * x[k] for k in range(i + 1, n))) / low[i][i]
    return x


def cholesky_solve(g: Matrix, c: Sequence[float], idx: Sequence[int]) -> list[float]:
    """Solve G[idx, idx] x = c[idx] (a tiny ridge where G is singular)."""
    if not idx:
        return []
    return _solve_factored(_factor(g, idx), [c[i] for i in idx])


def inverse_diagonal(g: Matrix, idx: Sequence[int]) -> list[float]:
    """The diagonal of (G[idx, idx])^-1: the variances of the fit's coefficients, up to s^2."""
    if not idx:
        return []
    low = _factor(g, idx)
    n = len(idx)
    out = []
    for k in range(n):
        unit = [0.0] * n
        unit[k] = 1.0
        out.append(_solve_factored(low, unit)[k])
    return out


def nnls_gram(
    g: Matrix, c: Sequence[float], free: Collection[int] = (), max_iter: int | None = None
) -> list[float]:
    """The non-negative least-squares solution from G = X'X and c = X'y.

    Args:
        g: the Gram matrix (n x n, symmetric, positive semi-definite).
        c: X'y (n).
        free: columns with no sign constraint (an intercept).
        max_iter: outer iterations at most (default 3n): the result so far is returned then.

    Returns:
        b (n values): b_j >= 0 for every j not in `free`.
    """
    n = len(c)
    scale = max((abs(g[i][i]) for i in range(n)), default=0.0)
    tol = 1e-10 * max(scale, 1.0) * max(1.0, max((abs(v) for v in c), default=0.0))
    x = [0.0] * n
    passive: list[int] = sorted(set(free))
    if passive:
        for i, v in zip(passive, cholesky_solve(g, c, passive), strict=True):
            x[i] = v
    limit = max_iter if max_iter is not None else 3 * n + 3
    for _ in range(limit):
        nz = [(j, x[j]) for j in range(n) if x[j]]
        held = set(passive)
        w = [c[i] - sum(row[j] * xj for j, xj in nz) for i, row in enumerate(g)]
        candidates = [i for i in range(n) if i not in held and w[i] > tol]
        if not candidates:
            break
        passive.append(max(candidates, key=lambda i: w[i]))
        passive.sort()
        for _inner in range(3 * n + 3):
            z = dict(zip(passive, cholesky_solve(g, c, passive), strict=True))
            bad = [i for i in passive if i not in free and z[i] <= 0.0]
            if not bad:
                x = [z.get(i, 0.0) for i in range(n)]
                break
            alpha = (
                min(x[i] / (x[i] - z[i]) for i in bad if x[i] - z[i] > 0.0)
                if any(x[i] - z[i] > 0.0 for i in bad)
                else 0.0
            )
            x = [x[i] + alpha * (z.get(i, 0.0) - x[i]) for i in range(n)]
            passive = [i for i in passive if i in free or x[i] > tol * 1e-3]
            for i in range(n):
                if i not in passive:
                    x[i] = 0.0
    return x
