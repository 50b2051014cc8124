"""Exact one-feature ``LinearSVC`` (squared hinge, L2, penalised intercept) for many classes at once.

SAP fits ``LinearSVC(C, class_weight="balanced")`` on a single code. liblinear's primal problem for one
one-vs-rest class c (Fan et al. 2008; intercept_scaling 1, so the bias is penalised like the weight) is

    min_{w,b} 0.5 (w^2 + b^2) + sum_i C_i max(0, 1 - y_i (w x_i + b))^2,

with y_i = +1 for class c, -1 otherwise; C_i = C * weight_c for the positives and C for the negatives in the
multi-class case (liblinear weights only the positive class of each one-vs-rest problem), C * weight of the
sample's class in the binary case; balanced weight_c = n / (K * n_c).

With one feature the active set {i : y_i (w x_i + b) < 1} is a prefix or suffix of the sorted codes within
each class, so every sum the objective, gradient and Hessian need comes from prefix sums of (1, x, x^2): each
Newton step costs O(K log n) instead of O(K n). Solved to convergence (liblinear stops at tol 1e-4; the
coefficients agree to ~1e-5, see tests).
"""

from __future__ import annotations

import numpy as np


def accuracies(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *, C: float = 0.01):
    """Test accuracy, for each label column of ``y_train``/``y_test`` (n, F), of the balanced LinearSVC on x."""
    order = np.argsort(x_train, kind="stable")
    out = np.zeros(y_train.shape[1])
    for k in range(y_train.shape[1]):
        out[k] = np.mean(fit_predict(x_train, y_train[:, k], x_test, C=C, order=order) == y_test[:, k])
    return out


def fit_predict(x_train, y_train, x_test, *, C: float = 0.01, order=None) -> np.ndarray:
    """Predicted labels for ``x_test`` of the balanced one-feature LinearSVC trained on (x_train, y_train)."""
    classes, y = np.unique(y_train, return_inverse=True)
    w, b = fit(x_train, y, len(classes), C=C, order=order)
    if len(classes) == 2:
        return classes[(w[0] * x_test + b[0] > 0).astype(np.int64)]
    # ties -> first class, as numpy's argmax in scikit-learn's predict
    return classes[np.argmax(w[:, None] * x_test[None, :] + b[:, None], axis=0)]


def fit(x: np.ndarray, y: np.ndarray, n_classes: int, *, C: float = 0.01, max_iter: int = 100, order=None):
    """(w, b) per one-vs-rest problem (one problem, positive = class 1, when ``n_classes == 2``).

    ``y`` holds labels 0..n_classes-1; ``order`` is ``argsort(x)`` when already known.
    """
    if order is None:
        order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    n = len(xs)
    weight = n / (n_classes * np.bincount(ys, minlength=n_classes))
    # Rows grouped by class, sorted by x inside each class: key = class * (n + 1) + rank of x.
    grouped = np.argsort(ys, kind="stable")
    keys = ys[grouped] * (n + 1) + grouped
    xg = xs[grouped]
    cls_cum = _prefix_sums(xg)
    all_cum = _prefix_sums(xs)
    if n_classes == 2:
        pos, c_pos, c_neg = np.array([1]), C * weight[1:2], C * weight[0:1]
    else:
        pos, c_pos, c_neg = np.arange(n_classes), C * weight, np.full(n_classes, C)

    def class_sums(cls, lo, hi):
        """Sums of (1, x, x^2) over rows of class ``cls`` with x-rank in [lo, hi)."""
        a = np.searchsorted(keys, cls * (n + 1) + lo)
        z = np.searchsorted(keys, cls * (n + 1) + hi)
        return cls_cum[:, z] - cls_cum[:, a]

    def pos_sums(lo, hi):
        return class_sums(pos, lo, hi) * c_pos

    def neg_sums(lo, hi):
        if n_classes == 2:
            return class_sums(np.array([0]), lo, hi) * c_neg
        return (all_cum[:, hi] - all_cum[:, lo] - class_sums(pos, lo, hi)) * c_neg

    return _Problem(xs, pos_sums, neg_sums, len(pos)).solve(max_iter)


def _prefix_sums(x: np.ndarray) -> np.ndarray:
    out = np.zeros((3, len(x) + 1))
    np.cumsum(np.stack([np.ones_like(x), x, x * x]), axis=1, out=out[:, 1:])
    return out


class _Problem:
    """Objective, gradient and Hessian of P squared-hinge problems from range sums over sorted x."""

    def __init__(self, xs, pos_sums, neg_sums, n_problems):
        self.xs, self.pos_sums, self.neg_sums, self.p = xs, pos_sums, neg_sums, n_problems

    def _active_range(self, w, b, sign):
        """x-rank range [lo, hi) of the rows with sign * (w x + b) < 1 (a prefix or a suffix of sorted x)."""
        n = len(self.xs)
        sw = sign * w
        thr = np.divide(1.0 - sign * b, sw, out=np.zeros_like(w), where=sw != 0)
        prefix = sw > 0
        lo = np.where(prefix, 0, np.searchsorted(self.xs, thr, side="right"))
        hi = np.where(prefix, np.searchsorted(self.xs, thr), n)
        flat = sw == 0  # active everywhere when sign * b < 1, else nowhere
        lo = np.where(flat, 0, lo)
        hi = np.where(flat, np.where(sign * b < 1.0, n, 0), hi)
        return lo, hi

    def _terms(self, w, b):
        return self.pos_sums(*self._active_range(w, b, 1.0)), self.neg_sums(*self._active_range(w, b, -1.0))

    def objective(self, w, b):
        sp, sn = self._terms(w, b)
        return 0.5 * (w * w + b * b) + _loss(sp, w, b, 1.0) + _loss(sn, w, b, -1.0)

    def solve(self, max_iter):
        p = self.p
        w, b = np.zeros(p), np.zeros(p)
        f = self.objective(w, b)
        for _ in range(max_iter):
            sp, sn = self._terms(w, b)
            gw, gb = w.copy(), b.copy()
            hww, hwb, hbb = np.ones(p), np.zeros(p), np.ones(p)
            for (s0, s1, s2), y in ((sp, 1.0), (sn, -1.0)):
                # gradient of sum c (1 - y(wx+b))^2 (y^2 = 1) and its generalised Hessian
                gw += 2 * (w * s2 + b * s1 - y * s1)
                gb += 2 * (w * s1 + b * s0 - y * s0)
                hww += 2 * s2
                hwb += 2 * s1
                hbb += 2 * s0
            det = hww * hbb - hwb * hwb
            dw = -(hbb * gw - hwb * gb) / det
            db = -(hww * gb - hwb * gw) / det
            decrease = gw * dw + gb * db
            todo = -decrease > 1e-14 * np.maximum(1.0, np.abs(f))
            if not todo.any():
                break
            step = np.where(todo, 1.0, 0.0)
            for _ in range(60):  # backtracking (Armijo) on the problems still moving
                f_new = self.objective(w + step * dw, b + step * db)
                bad = todo & (f_new > f + 1e-4 * step * decrease)
                if not bad.any():
                    break
                step = np.where(bad, step * 0.5, step)
            w, b, f = w + step * dw, b + step * db, f_new
        return w, b


def _loss(s, w, b, y):
    """sum over the active set of c (1 - y(wx+b))^2 from weighted sums s = (sum c, sum c x, sum c x^2)."""
    s0, s1, s2 = s
    return s0 - 2 * y * (w * s1 + b * s0) + w * w * s2 + 2 * w * b * s1 + b * b * s0
