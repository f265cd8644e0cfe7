"""The findings a PyTorch pass can carry, written at the line to change.

Each function returns a :class:`Finding` the tracer delivers as a ``diagnostic``
event. These rules know what the event stream alone does not (a parameter's
version counter, the autograd node a pass starts from, where a graph was cut), so
for torch nodes they stand in for the generic rules of the same kinds:
:class:`GenericDuplicates` drops those generic findings about torch nodes.
"""

from __future__ import annotations

import ast
import linecache
from typing import Dict, List, Optional, Sequence, Tuple

from ...core.events import Finding
from ...core.sites import locate_site
from ...core.text import number, plural

__all__ = ["stale_gradient", "backward_twice", "cut_off", "non_finite", "enclosing_loop",
           "GenericDuplicates"]

# The generic rules these replace for torch nodes; a non-finite *value* (pass 0) is kept.
_REPLACED = frozenset({"stale_gradient", "grad_never_reached", "non_finite", "polluted_grad"})


def _listed(names: Sequence[str], limit: int = 4) -> str:
    """
    >>> _listed(["a", "b"]), _listed(["a", "b", "c", "d", "e", "f"])
    ('a and b', 'a, b, c, d and 2 more')
    """
    names = list(names)
    if len(names) > limit:
        return ", ".join(names[:limit]) + f" and {len(names) - limit} more"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _code(site: Optional[str]) -> str:
    where = locate_site(site) if site else None
    text = linecache.getline(*where).strip() if where else ""
    return f" (`{text}`)" if text else ""


def _moved(site: str, line: int) -> str:
    """The same file's site at another line: ``x.py:9`` or ``cell 2, line 9``."""
    label, sep, _ = site.rpartition(", line ")
    if sep:
        return f"{label}, line {line}"
    return f"{site.rpartition(':')[0]}:{line}"


_trees: Dict[str, Optional[ast.AST]] = {}


def enclosing_loop(site: Optional[str]) -> Optional[str]:
    """The site of the innermost ``for`` or ``while`` statement around the line at ``site``."""
    where = locate_site(site) if site else None
    if where is None:
        return None
    filename, line = where
    if filename not in _trees:
        try:
            _trees[filename] = ast.parse("".join(linecache.getlines(filename)))
        except (SyntaxError, ValueError):
            _trees[filename] = None
    tree, found = _trees[filename], None
    for stmt in ast.walk(tree) if tree is not None else ():
        if isinstance(stmt, (ast.For, ast.While, ast.AsyncFor)) and \
                stmt.lineno < line <= (stmt.end_lineno or stmt.lineno):
            if found is None or stmt.lineno > found.lineno:
                found = stmt
    return None if found is None else _moved(site, found.lineno)


def stale_gradient(pass_no: int, site: Optional[str], stale: List[Tuple[int, str, float, int]]) -> Finding:
    """``stale``: (node, name, grad before, the pass that left it) for each parameter that was
    updated since that pass and still carried its gradient into this one."""
    names = [name for _, name, _, _ in stale]
    node, name, before, left_by = stale[0]
    loop = enclosing_loop(site)
    in_loop = f" in the loop at {loop}" if loop else ""
    message = (f"backward() at {site}{_code(site)} adds to gradients the previous step left: "
               f"{_listed(names)} still held {'their' if len(names) > 1 else 'its'} gradient from "
               f"backward pass {left_by} ({name}.grad norm {number(before)}), and "
               f"{'they were' if len(names) > 1 else 'it was'} updated since, so nothing{in_loop} "
               f"zeroes the gradients between steps")
    hint = ("call optimizer.zero_grad() once per step, before loss.backward() "
            f"(at the top of the loop body{', ' + _moved(site, int(loop.rpartition(':')[2]) + 1) if loop and ':' in loop else ''}); "
            "ignore this if you add up gradients over several steps on purpose")
    return Finding(pass_no, "stale_gradient", "warning", message, tuple(n for n, _, _, _ in stale),
                   tuple(names), site, hint)


def backward_twice(pass_no: int, site: Optional[str], root: int, root_name: str, first_pass: int,
                   first_site: Optional[str], leaves: Sequence[str]) -> Finding:
    """A pass from a root whose graph an earlier pass already went through (retain_graph=True)."""
    reached = f": {_listed(leaves)} now hold{'s' if len(leaves) == 1 else ''} its gradient twice" if leaves else ""
    message = (f"backward() at {site}{_code(site)} runs backward pass {pass_no} from {root_name}, whose "
               f"graph backward pass {first_pass} ({first_site or 'an earlier call'}) already went "
               f"through (kept by retain_graph=True), so every gradient it reaches is added a second "
               f"time{reached}")
    hint = ("call backward() once per forward; for two losses on one graph, add them and call "
            "backward() once, or zero the gradients between the calls")
    return Finding(pass_no, "backward_twice", "warning", message, (root,), (root_name,), site, hint)


def cut_off(pass_no: int, cut_site: Optional[str], root_name: str, leaves: List[Tuple[int, str]]) -> Finding:
    """Parameters used in the forward whose only way to the root went through a ``.detach()``."""
    names = [name for _, name in leaves]
    where = f" at {cut_site}{_code(cut_site)}" if cut_site else ""
    message = (f"{_listed(names)} took part in the forward but received no gradient in backward pass "
               f"{pass_no}: the .detach(){where} cut {'them' if len(names) > 1 else 'it'} off from "
               f"{root_name}, so {'they' if len(names) > 1 else 'it'} will never learn")
    hint = ("remove the .detach() if these parameters should learn; if the cut is meant, freeze them "
            "(requires_grad_(False)) so that the intent is visible")
    return Finding(pass_no, "grad_never_reached", "warning", message, tuple(n for n, _ in leaves),
                   tuple(names), cut_site, hint)


_DOMAIN_HINTS = {
    "sqrt": "sqrt's derivative 1 / (2 sqrt(x)) is infinite at x = 0: add a small epsilon "
            "(torch.sqrt(x + 1e-12)) or clamp x away from 0",
    "log": "log's derivative 1 / x is infinite at x = 0: add a small epsilon (torch.log(x + 1e-12)) "
           "or use a stable form (F.log_softmax, torch.logsumexp)",
    "div": "the derivative of a / b is infinite where b = 0: keep the divisor away from 0",
    "pow": "x ** p with p < 1 has an infinite derivative at x = 0: add a small epsilon or clamp x",
}


def non_finite(pass_no: int, origin: int, origin_name: str, op: str, origin_site: Optional[str],
               received: float, receiver: int, receiver_name: str, sent: float, spread: int) -> Finding:
    """The first node of a pass that received finite gradients and sent a non-finite one."""
    where = f", made at {origin_site}{_code(origin_site)}" if origin_site else ""
    message = (f"the gradient became {number(sent)} at {origin_name} ({op}{where}) in backward pass "
               f"{pass_no}: it received a finite gradient (norm {number(received)}) and sent "
               f"{receiver_name} a gradient of norm {number(sent)}; "
               f"{plural(spread, 'gradient')} computed from it {'is' if spread == 1 else 'are'} non-finite too")
    hint = _DOMAIN_HINTS.get(op, f"the derivative of {op} is infinite or undefined at this input: keep "
                                 f"the input away from that point (an epsilon, a clamp) or use a "
                                 f"numerically stable form of the expression")
    return Finding(pass_no, "non_finite", "error", message, (origin, receiver),
                   (origin_name, receiver_name), origin_site, hint)


class GenericDuplicates:
    """A tracer filter: in the passes PyTorch made, drops the generic rules' findings that
    a torch rule replaces, and lets the torch rules' own findings through."""

    def __init__(self, torch_passes: set) -> None:
        self.torch_passes = torch_passes
        self.starting = False  # True while a torch pass's start is reported (its number is new)
        self.ours: set = set()  # (finding, message) of the findings the torch rules report

    def __call__(self, event):
        if event.kind != "diagnostic" or event.finding not in _REPLACED or not event.pass_no:
            return event
        key = (event.finding, event.message)
        if key in self.ours:
            self.ours.discard(key)
            return event
        return None if self.starting or event.pass_no in self.torch_passes else event
