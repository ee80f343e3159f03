"""NIST StRD nonlinear-regression problems: the ``.dat`` reader and the log relative error.

NIST's Statistical Reference Datasets certify nonlinear least-squares codes: each of the 27
files holds a model, two starting points (Start 1 far, Start 2 near), the certified parameters
and residual sum of squares, and the data.  :func:`read_problem` turns one file into a
:class:`NistProblem` whose model is a :class:`~lawsearch.formula.Law` built by the safe parser
(the model text is data too).  Nelson's model is for ``log(y)``: its law is ``exp`` of the model,
to be fitted with the ``squared_log`` loss, whose residuals are then exactly the model's.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy

from .errors import DataError
from .formula import Law

__all__ = ["NistProblem", "read_problem", "read_problems", "lre", "parameter_lres", "MAX_LRE"]

#: Certified values carry 11 significant digits: an LRE is capped there.
MAX_LRE = 11.0
_DIGITS = 40  # digits of the arithmetic of an RSS that float rounding would swamp
_ROUNDING_SHARE = 1e-15  # an RSS below this share of sum(y**2) is evaluated in _DIGITS digits
_PARAMETER = re.compile(r"^\s*(b\d+)\s*=\s*(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$")
_RSS = re.compile(r"^\s*Residual Sum of Squares:\s*(\S+)")
_MODEL_START = re.compile(r"^\s*(log\[y\]|y)\s*=\s*(.*)$")
_MODEL_END = re.compile(r"\+\s*e\s*$")


@dataclass(frozen=True, eq=False)
class NistProblem:
    """One certified problem: model, starts, certified values and data."""

    name: str
    law: Law
    log_target: bool  # the model is for log(y): fit with the squared_log loss
    start1: np.ndarray
    start2: np.ndarray
    certified: np.ndarray
    certified_rss: float
    X: np.ndarray
    y: np.ndarray
    rows: tuple[tuple[str, ...], ...]  # the data as written (y first): exact decimals for a precise RSS

    @property
    def loss(self) -> str:
        return "squared_log" if self.log_target else "squared"

    def rss(self, theta: np.ndarray) -> float:
        """The residual sum of squares of the model (of log(y) for a log target) at ``theta``;
        evaluated in :data:`_DIGITS`-digit arithmetic where float residuals would be mostly rounding
        (Lanczos1's certified RSS is 1.4e-25: its residuals are ~1e-13 of values ~1)."""
        pred = self.law.evaluate(self.X, theta)
        with np.errstate(all="ignore"):
            r = np.log(pred) - np.log(self.y) if self.log_target else pred - self.y
        if not np.all(np.isfinite(r)):
            return math.inf
        rss = float(r @ r)
        return self._precise_rss(theta) if rss < _ROUNDING_SHARE * float(self.y @ self.y) else rss

    def _precise_rss(self, theta: np.ndarray) -> float:
        law = self.law
        values = {law.symbol(p): sympy.Float(float(v), _DIGITS) for p, v in zip(law.parameters, theta)}
        total = sympy.Float(0, _DIGITS)
        for y, *row in self.rows:
            values.update({law.symbol(n): sympy.Float(x, _DIGITS) for n, x in zip(law.inputs, row)})
            pred = law.expr.evalf(_DIGITS, subs=values)
            observed = sympy.Float(y, _DIGITS)
            r = (sympy.log(pred) - sympy.log(observed)).evalf(_DIGITS) if self.log_target else pred - observed
            total += r * r
        return float(total)


def read_problem(path: str | Path) -> NistProblem:
    """Read one NIST StRD ``.dat`` file; :class:`DataError` names the file and what is missing."""
    path = Path(path)
    lines = path.read_text().splitlines()
    model: list[str] = []
    starts: list[tuple[str, float, float, float]] = []
    rss = None
    header: list[str] | None = None
    rows: list[tuple[str, ...]] = []
    for number, line in enumerate(lines, 1):
        if header is not None:
            if line.strip():
                values = tuple(line.split())
                try:
                    np.array(values, dtype=float)
                except ValueError:
                    raise DataError(f"{path.name} line {number}: data row {line.strip()!r} is not numeric") from None
                rows.append(values)
            continue
        if model and not _MODEL_END.search(model[-1]):
            model.append(line.strip())
        elif not model and (match := _MODEL_START.match(line)):
            model.append(line.strip())
        elif match := _PARAMETER.match(line):
            name, start1, start2, certified, _ = match.groups()
            starts.append((name, float(start1), float(start2), float(certified)))
        elif match := _RSS.match(line):
            rss = float(match.group(1))
        elif line.startswith("Data:") and line.split()[1:2] == ["y"]:
            header = line.split()[1:]
    if not model or not starts or rss is None or not rows:
        raise DataError(f"{path.name}: not a NIST StRD file (model, parameters, certified RSS or data missing)")
    text = " ".join(model)
    log_target = text.startswith("log[y]")
    body = _MODEL_END.sub("", _MODEL_START.match(text).group(2))
    body = body.replace("[", "(").replace("]", ")").replace("arctan", "atan")
    inputs = [h for h in (header or [])[1:]]
    law = Law.parse(f"exp({body})" if log_target else body, inputs)
    names = [s[0] for s in starts]
    order = [names.index(p) for p in law.parameters]
    if sorted(law.parameters) != sorted(names):
        raise DataError(f"{path.name}: model parameters {law.parameters} differ from the listed {names}")
    data = np.array(rows, dtype=float)
    if data.ndim != 2 or data.shape[1] != len(header or []):
        raise DataError(f"{path.name}: data rows do not all have the {len(header or [])} columns {header}")
    column = lambda k: np.array([starts[j][k] for j in order])  # noqa: E731 - one-line selector
    return NistProblem(path.stem, law, log_target, column(1), column(2), column(3), rss, data[:, 1:], data[:, 0],
                       tuple(rows))


def read_problems(folder: str | Path) -> list[NistProblem]:
    """All ``*.dat`` problems of a folder, by name."""
    return [read_problem(p) for p in sorted(Path(folder).glob("*.dat"))]


def lre(estimate: float, certified: float) -> float:
    """Log relative error: the number of significant digits that agree, in [0, :data:`MAX_LRE`]."""
    if not math.isfinite(estimate):
        return 0.0
    error = abs(estimate - certified) / abs(certified) if certified != 0 else abs(estimate)
    if error == 0:
        return MAX_LRE
    return float(min(MAX_LRE, max(0.0, -math.log10(error))))


def parameter_lres(law: Law, theta: np.ndarray, certified: np.ndarray) -> np.ndarray:
    """Per-parameter LREs of ``theta``, taking the best of the law's symmetries
    (:func:`symmetries`: interchangeable terms of a sum, parameters that enter only squared)."""
    best = None
    for transform in symmetries(law):
        values = np.array([lre(v, c) for v, c in zip(transform(np.asarray(theta, dtype=float)), certified)])
        if best is None or values.min() > best.min():
            best = values
    return best


def symmetries(law: Law) -> list:
    """Maps of parameter vectors that leave ``law`` unchanged: permutations of the parameters of
    isomorphic groups of terms of a top-level sum (Lanczos' three exponentials, Gauss' two peaks,
    ENSO's two cycles) combined with sign flips of parameters the law only sees squared, or of
    pairs of them it sees only together (ENSO's period with its sine's amplitude)."""
    symbols = [law.symbol(p) for p in law.parameters]
    groups = _term_groups(law.expr, set(symbols))
    swaps = []
    for a, b in itertools.combinations(groups, 2):
        if len(a) == len(b):
            mapping = dict(zip(a, b)) | dict(zip(b, a))
            if law.expr.xreplace(mapping) == law.expr:
                swaps.append([(symbols.index(s), symbols.index(t)) for s, t in zip(a, b)])
    flips = [(j,) for j, s in enumerate(symbols) if law.expr.xreplace({s: -s}) == law.expr]
    flips += [(i, j) for (i, a), (j, b) in itertools.combinations(enumerate(symbols), 2)
              if (i,) not in flips and (j,) not in flips and law.expr.xreplace({a: -a, b: -b}) == law.expr]
    permutations = {tuple(range(len(symbols)))}
    while True:  # the group the swaps generate
        grown = permutations | {tuple(np.array(p)[_swap_array(s, len(symbols))]) for p in permutations for s in swaps}
        if grown == permutations:
            break
        permutations = grown
    signs = [{j: -1.0 for flip, on in zip(flips, chosen) if on for j in flip}
             for chosen in itertools.product([False, True], repeat=len(flips))]
    return [_transform(np.array(p), sign) for p in sorted(permutations) for sign in signs]


def _swap_array(swap: list[tuple[int, int]], n: int) -> np.ndarray:
    order = np.arange(n)
    for i, j in swap:
        order[i], order[j] = j, i
    return order


def _transform(permutation: np.ndarray, signs: dict[int, float]):
    def apply(theta: np.ndarray) -> np.ndarray:
        out = theta[permutation].copy()
        for j, sign in signs.items():
            out[j] *= sign
        return out
    return apply


def _term_groups(expr: sympy.Expr, parameters: set[sympy.Symbol]) -> list[tuple[sympy.Symbol, ...]]:
    """The parameters of the terms of a top-level sum, terms sharing a parameter merged; each group
    in order of first appearance in the printed text."""
    groups: list[set[sympy.Symbol]] = []
    for term in sympy.Add.make_args(expr):
        found = term.free_symbols & parameters
        for group in [g for g in groups if g & found]:
            groups.remove(group)
            found |= group
        if found:
            groups.append(found)
    text = str(expr)
    position = lambda s: re.search(rf"\b{re.escape(s.name)}\b", text).start()  # noqa: E731
    return [tuple(sorted(g, key=position)) for g in groups]
