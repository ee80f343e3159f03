"""Readable parameter names for a discovered law, in the conventional orientation.

An SR engine numbers its constants (``c0 + c1*params**c2 + c3*tokens**c4``); a
reader expects ``E + A/params**alpha + B/tokens**beta``.  :func:`readable_fit`
renames every parameter by its role, as the library names its forms
(:class:`~lawsearch.proposers.library.ParameterNames`): an additive constant is
``E``, an exponent (or rate) ``alpha``, ``beta`` …, any other parameter a scale
``A``, ``B`` …; names follow the printed text's order.  Where an exponent or a
scale is negative in every fitted group, it is written with its sign outside
(``c2 = -alpha``), so ``c1*params**c2`` reads ``A/params**alpha`` with alpha > 0.
The fitted values move along, so the law predicts exactly what it did.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import sympy

from .fit import LawFit
from .formula import Law

__all__ = ["parameter_roles", "readable_fit", "Role"]

Role = Literal["constant", "exponent", "scale"]


def parameter_roles(law: Law) -> dict[str, Role]:
    """Each parameter's role: ``constant`` (enters as ``+ E``), ``exponent`` (an exponent or a rate,
    :meth:`Law.exponent_parameters`) or ``scale`` (anything else)."""
    exponents = set(law.exponent_parameters())
    roles: dict[str, Role] = {}
    for name in law.parameters:
        if name in exponents:
            roles[name] = "exponent"
        elif sympy.diff(law.expr, law.symbol(name)) == 1:
            roles[name] = "constant"
        else:
            roles[name] = "scale"
    return roles


def _negative_everywhere(fit: LawFit, index: int) -> bool:
    return all(float(f.theta[index]) < 0 for f in fit.fits)


def readable_fit(fit: LawFit, *, rename: bool = True) -> LawFit:
    """The same fitted law with role-based names (``rename``) and exponents and scales that are
    negative in every fitted group written with their sign outside; predictions are unchanged.

    With ``rename=False`` the names are kept and only the orientation changes (a published law).
    """
    from .proposers.library import ParameterNames

    law = fit.law
    roles = parameter_roles(law)
    flipped = {name for j, name in enumerate(law.parameters)
               if roles[name] != "constant" and _negative_everywhere(fit, j)}
    oriented = Law.from_sympy(law.expr.xreplace({law.symbol(n): -law.symbol(n) for n in flipped}), law.inputs,
                              pairs=law.pairs)
    order = oriented.parameters  # the old names, in the order of the oriented law's text
    if rename:
        pool = ParameterNames(taken=law.inputs)
        pick = {"constant": lambda: pool.new("E"), "exponent": pool.exponent, "scale": pool.coefficient}
        names = {old: pick[roles[old]]().name for old in order}
    else:
        names = {old: old for old in order}
    renamed = Law.from_sympy(oriented.expr.xreplace({law.symbol(old): law.symbol(new) for old, new in names.items()}),
                             law.inputs, pairs=law.pairs)  # parameters in its text's order, as Law.parse reads it back
    position = {name: j for j, name in enumerate(law.parameters)}
    old_of = {new: old for old, new in names.items()}
    fits = []
    for group_fit in fit.fits:
        theta = np.array([(-1.0 if old_of[new] in flipped else 1.0) * group_fit.theta[position[old_of[new]]]
                          for new in renamed.parameters])
        fits.append(dataclasses.replace(group_fit, theta=theta))
    return LawFit(renamed, tuple(fits))
