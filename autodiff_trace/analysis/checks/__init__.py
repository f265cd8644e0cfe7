"""The checks: one small class per kind of gradient bug, each reading the event kinds it needs."""

from __future__ import annotations

from typing import List

from .base import Check, Context
from .finite import NonFinite
from .firing import FiredTooEarly, FiredTwice
from .numeric import GradientCheck
from .outside import FiredOutsideGraph
from .reached import GradNeverReached
from .stale import StaleGradient
from .writes import OverwrittenGrad

__all__ = ["Check", "Context", "default_checks"]


def default_checks(ctx: Context, *, check_grads: bool = False, **gradcheck_options) -> List[Check]:
    """Every check, in the order their findings of one event are reported."""
    checks: List[Check] = [NonFinite(ctx), StaleGradient(ctx), FiredOutsideGraph(ctx), FiredTwice(ctx),
                           FiredTooEarly(ctx), OverwrittenGrad(ctx), GradNeverReached(ctx)]
    if check_grads:
        checks.append(GradientCheck(ctx, **gradcheck_options))
    return checks
