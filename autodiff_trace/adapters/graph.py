"""The graph of a user's nodes as the tracer knows it: parents remembered when each node
is made, consumers read backwards, tape indices resolved, and the root of a pass found
in the engine loop that holds it."""

from __future__ import annotations

from types import CodeType, FrameType
from typing import Dict, List, Optional, Set, Tuple

from .nodeids import ToolRef, as_float
from .roles import LARGEST as _LARGEST, MISSING, called_with, held_nodes, newer_held, static_attr, tabled_nodes

__all__ = ["NodeGraph", "FrameKey", "frame_key", "called_from"]

_instance_dict = object.__getattribute__  # the instance dict as stored, never a property
_HELD_KINDS = (tuple, list, set, frozenset)  # the containers a parents attribute is read in
_ROOT_SEARCH_FRAMES = 6  # how far up from a write the engine loop holding the root is looked for

FrameKey = Tuple[int, CodeType, tuple]


def frame_key(frame: FrameType) -> FrameKey:
    """What names a running call without holding its frame (a frame kept would keep every
    node its locals hold alive after the call returns; a weak registry would count them):
    its id, its code, and where its callers stand, since a call that returned leaves its id
    to the next (the second of ``backprop(g); backprop(g)`` on one line)."""
    return id(frame), frame.f_code, _callers(frame)


def _callers(frame: FrameType) -> tuple:
    """The instructions its callers are at, a few levels up."""
    callers, frame = [], frame.f_back
    while frame is not None and len(callers) < 6:
        callers.append(frame.f_lasti)
        frame = frame.f_back
    return tuple(callers)


def called_from(frame: Optional[FrameType], key: tuple) -> Optional[tuple]:
    """Where its callers are (their instructions, a few levels up) in the call ``key``
    names, if ``frame`` runs inside it; None once it has returned."""
    while frame is not None:
        if id(frame) == key[0] and frame.f_code is key[1]:
            return _callers(frame)
        frame = frame.f_back
    return None


class NodeGraph:
    """Parents of every node, by role (see :mod:`.roles`), for one reporter."""

    def __init__(self, reporter) -> None:
        self.reporter = reporter
        self._parents: Dict[int, tuple] = {}  # node id -> its parents' ids, as made (no object per node)
        self._with_parents: Set[type] = set()  # classes some of whose nodes held parents
        self._consumed: Optional[Dict[int, list]] = None  # node id -> parents' ids, from consumers
        self._container: Optional[list] = None  # a tape (list) whose indices nodes name
        self.found_in: Optional[FrameKey] = None  # the engine call the last root was found in

    # -- learning -----------------------------------------------------------------------
    def remember(self, node, node_id: int, vocab, creator: FrameType) -> tuple:
        """Read and keep the parents of a node just made (only nodes made before it)."""
        self.remember_ids(node, node_id, vocab, creator)
        node_of = self.reporter.ids.node
        return tuple([node_of(parent_id) for parent_id in self._parents.get(node_id, ())])

    def remember_ids(self, node, node_id: int, vocab, creator: FrameType) -> tuple:
        """The ids of the parents of a node just made, read and kept as :meth:`remember`."""
        if vocab.parents:
            direct = self._held_directly(node, node_id, vocab.parents)
            if direct is not None:
                return direct
        found = self._held(node, node_id, vocab)
        if not found:  # an op function's arguments, or a gate's forward(u0, u1)
            found = [p for p in called_with(creator, self.reporter.is_node) if self._earlier(p, node_id)]
        self._keep(node_id, found)
        return self._parents.get(node_id, ())

    def _held_directly(self, node, node_id: int, name: str) -> Optional[tuple]:
        """The common design read in one go: the parents attribute, in the instance dict,
        is a plain tuple, list or set of nodes (micrograd's ``_prev``). Their ids, kept as
        :meth:`_held` and :meth:`_keep` would keep them, or None for any other content
        (pairs, a context object, a leaf made by an op function), read the general way."""
        try:
            namespace = object.__getattribute__(node, "__dict__")
        except AttributeError:
            return None
        if type(namespace) is not dict:
            return None
        held = namespace.get(name, namespace)
        kind = type(held)
        if kind is not tuple and kind is not set and kind is not list and kind is not frozenset \
                or not held or len(held) > _LARGEST:
            return None
        reporter = self.reporter
        node_types, ids_of = reporter.node_types, reporter.ids.ids_by_key
        parent_ids = []  # the ids of the nodes made before it
        for item in held:
            if not isinstance(item, node_types):
                return None
            parent_id = ids_of.get(id(item))
            if parent_id is not None and parent_id < node_id:
                parent_ids.append(parent_id)
        if not parent_ids:
            return None  # made from no earlier node: the general reading decides
        return self._keep_held(node, node_id, kind, parent_ids)

    def parents_made(self, node, node_id: int, held) -> Optional[tuple]:
        """:meth:`_held_directly` for a node just given its id, from what its parents
        attribute holds (``held``), in the common case only: a tuple, list or set of nodes
        that all have ids, none of them the node's; None for anything else, which
        :meth:`remember_ids` reads."""
        kind = type(held)
        if kind is not tuple and kind is not set and kind is not list and kind is not frozenset \
                or not held or len(held) > _LARGEST:
            return None
        parent_ids = list(map(self.reporter.ids.ids_by_key.get, map(id, held)))
        if None in parent_ids or max(parent_ids) >= node_id:
            return None  # an item of another kind, or one without an id yet: the general reading
        return self._keep_held(node, node_id, kind, parent_ids)

    def _keep_held(self, node, node_id: int, kind: type, parent_ids: list) -> tuple:
        """Keep ``parent_ids``, read from a ``kind`` of container, as the node's parents: a
        set's in creation order, others each once where it first comes; returns their tuple."""
        if len(parent_ids) > 1:
            if kind is set or kind is frozenset:  # a set comes in creation order, every run alike
                parent_ids.sort()
            elif len(set(parent_ids)) < len(parent_ids):  # each once, where it first comes (``a * a``)
                parent_ids = list(dict.fromkeys(parent_ids))
        self._with_parents.add(type(node))
        parents = self._parents[node_id] = tuple(parent_ids)  # the event's tuple too: one object
        return parents

    def _earlier(self, candidate, node_id: int) -> bool:
        known = self.reporter.ids.known(candidate)
        return known is not None and known < node_id

    def _held(self, node, node_id: int, vocab) -> list:
        """The nodes made before ``node`` that it holds, or that a table of its class's
        module keeps for it (``EDGES[id(self)]``); a set of them in creation order."""
        is_node = self.reporter.is_node
        found = [p for p in held_nodes(node, is_node, vocab.parents) if self._earlier(p, node_id)]
        if not found and vocab.parents is None:  # kept apart, in a table keyed by the node's id
            found = [p for p in tabled_nodes(node, is_node) if self._earlier(p, node_id)]
        if found:  # the class holds its parents: no need to read consumers backwards
            self._with_parents.add(type(node))
            if vocab.parents and isinstance(static_attr(node, vocab.parents), (set, frozenset)):
                found.sort(key=self.reporter.ids.known)  # a set comes in creation order, every run alike
        return found

    def _keep(self, node_id: int, found: list) -> None:
        """Kept as ids: a graph the script dropped is freed by one collection, as untraced."""
        if found:
            id_of = self.reporter.ids.of
            self._parents[node_id] = tuple([id_of(p) for p in found])

    def forget(self, node_id: int) -> None:
        self._parents.pop(node_id, None)

    def learn_container(self, frame: FrameType, node) -> None:
        """A write from a function holding a list that holds the node: a tape, whose
        indices the nodes' parent entries may name. Only for nodes that name parents by
        index: any other list (a topological order) is never kept, nor its nodes alive."""
        vocab = self.reporter.vocabulary(node)
        held = static_attr(node, vocab.parents, MISSING) if vocab is not None and vocab.parents else ()
        if not isinstance(held, (list, tuple)) or not any(
                type(item) is int or type(item) is tuple and item and type(item[0]) is int for item in held):
            return
        for value in list(frame.f_locals.values()):
            if type(value) is list and any(item is node for item in value):
                self._container = value
                return

    def pass_started(self) -> None:
        self._consumed = None

    def pass_ended(self) -> None:
        self._consumed = None

    # -- reading ------------------------------------------------------------------------
    def parents(self, node) -> List:
        reporter = self.reporter
        node_id = reporter.ids.known(node)
        found = []
        if node_id is not None:
            node_of = reporter.ids.node
            for parent_id in self._parents.get(node_id, ()):
                parent = node_of(parent_id)
                if parent is None:
                    parent = self._held_parent(node, parent_id)
                if parent is not None:
                    found.append(parent)
        if not found and node_id is not None and node_id not in self._parents:
            found = self._attached_later(node, node_id)
        if type(node) not in self._with_parents:
            found.extend(p for p in map(reporter.ids.node, self._from_consumers().get(node_id, ()))
                         if p is not None and p not in found)
            found.extend(self._by_index(node))
        return found

    def _attached_later(self, node, node_id: int) -> List:
        """Parents an op set on its result after making it (``ret._ctx = ctx``), read when
        first asked for and kept from then on (none yet: a leaf, or an op still making it)."""
        vocab = self.reporter.vocabulary(node)
        if vocab is None or vocab.parents is not None:
            return []
        found = self._held(node, node_id, vocab)
        self._keep(node_id, found)
        return found

    def order(self, root, known: Dict[int, float]) -> Tuple[Tuple[int, ...], Tuple[float, ...]]:
        """Ids of the nodes ``root`` depends on, root first, each before its parents, and
        their grads (``known`` gives grads as they were before writes already made).

        The walk runs once a pass over the whole graph: :meth:`_held_parent` and the
        instance dict read of :meth:`_held_items` are written out in it, the node's parents
        attribute read once for all its parents (micrograd's MLP, 65k nodes, the collector off:
        133-144 ms a pass down to 117 ms)."""
        reporter = self.reporter
        vocab_of, id_of, keepers = reporter.vocab_of, reporter.ids.of, reporter.ids.keepers
        with_parents, held, ids_by_key = self._with_parents, self._parents, reporter.ids.ids_by_key
        root_id = id_of(root)
        # a depth-first walk over ids: a node's id comes off the stack to visit it, and its
        # negation (ids are positive) once its parents are done
        post_ids, visited, stack, pushed = [], {}, [root_id], {root_id: root}
        parents_names: Dict[type, Optional[str]] = {}  # node class -> its parents attribute's name
        self.pass_started()
        while stack:
            node_id = stack.pop()
            if node_id < 0:
                post_ids.append(-node_id)
                continue
            if node_id in visited:
                continue
            node = visited[node_id] = pushed.pop(node_id)
            stack.append(-node_id)
            parent_ids = held.get(node_id) if type(node) in with_parents else None
            if parent_ids is None:
                for parent in self.parents(node):
                    parent_id = id_of(parent)
                    if parent_id not in visited:
                        pushed[parent_id] = parent
                        stack.append(parent_id)
            else:
                items = None  # what the node's parents attribute holds, read for its first unkept parent
                for parent_id in parent_ids:
                    if parent_id not in visited:
                        keep = keepers.get(parent_id)  # NodeIds.node, inline: a node that died is left out
                        parent = keep() if keep.__class__ is ToolRef else keep
                        if parent is None:  # kept by no weak reference: _held_parent, inline
                            if items is None:
                                kind = type(node)
                                name = parents_names.get(kind, MISSING)
                                if name is MISSING:
                                    vocab = reporter.vocabulary(node)
                                    name = parents_names[kind] = vocab.parents if vocab is not None else None
                                items = _instance_dict(node, "__dict__").get(name, ()) if name else ()
                                if type(items) not in _HELD_KINDS:
                                    items = self._held_items(node)
                            for item in items:
                                if ids_by_key.get(id(item)) == parent_id:
                                    parent = item
                                    break
                        if parent is not None:
                            pushed[parent_id] = parent
                            stack.append(parent_id)
        post_ids.reverse()
        grads = []
        for node_id in post_ids:
            if node_id in known:
                grads.append(known[node_id])
            else:
                node = visited[node_id]
                vocab = vocab_of.get(type(node)) or reporter.vocabulary(node)
                grads.append(as_float(static_attr(node, vocab.grad)))
        return tuple(post_ids), tuple(grads)

    def _held_parent(self, node, parent_id: int):
        """``node``'s parent ``parent_id`` when no weak reference gives it back (its id was
        given by :meth:`.nodeids.NodeIds.number`): the item ``node``'s parents attribute
        holds with that id; None when it holds none (it died, or was taken out)."""
        ids_of = self.reporter.ids.ids_by_key
        for item in self._held_items(node):
            if ids_of.get(id(item)) == parent_id:
                return item
        return None

    def _held_items(self, node):
        """What ``node``'s parents attribute holds, when it is a tuple, list or set; else ()."""
        vocab = self.reporter.vocabulary(node)
        held = static_attr(node, vocab.parents) if vocab is not None and vocab.parents else None
        return held if type(held) in _HELD_KINDS else ()

    def has_parent(self, node, target) -> bool:
        return any(p is target for p in self.parents(node))

    def _from_consumers(self) -> Dict[int, list]:
        """Parents read backwards from consumer lists (``children``, ``adjoints``), once
        a pass: a node made later and listed by an earlier node is that node's child."""
        if self._consumed is None:
            reporter = self.reporter
            known, is_node = reporter.ids.known, reporter.is_node
            consumed: Dict[int, list] = {}
            for node_id, node in list(reporter.ids.live()):
                if type(node) in self._with_parents:
                    continue
                for child in newer_held(node, is_node, lambda c: (known(c) or 0) > node_id):
                    consumed.setdefault(known(child), []).append(node_id)
            self._consumed = consumed
        return self._consumed

    def _by_index(self, node) -> List:
        """Parents named by their index in a tape: ``[(parent_index, weight), ...]``."""
        tape = self._container
        vocab = self.reporter.vocabulary(node)
        if tape is None or vocab is None or not vocab.parents:
            return []
        held = static_attr(node, vocab.parents, MISSING)
        if not isinstance(held, (list, tuple)):
            return []
        found = []
        for item in held:
            index = item[0] if isinstance(item, tuple) and item else item
            if type(index) is int and -len(tape) <= index < len(tape) and self.reporter.is_node(tape[index]):
                found.append(tape[index])
        return found

    def root_in_stack(self, frame: FrameType, target) -> Optional[object]:
        """The root of a pass an engine function is running: a node held by the writing
        function (or one just above it) whose graph holds ``target``. Module-level code
        is never an engine loop."""
        is_node = self.reporter.is_node
        levels = _ROOT_SEARCH_FRAMES
        while frame is not None and levels > 0 and frame.f_code.co_name != "<module>":
            local = frame.f_locals
            for name in frame.f_code.co_varnames[:frame.f_code.co_argcount]:
                value = local.get(name)
                if is_node(value) and value is not target and self._reaches(value, target):
                    self.found_in = frame_key(frame)
                    return value
            frame, levels = frame.f_back, levels - 1
        return None

    @staticmethod
    def runs_in(frame: Optional[FrameType], engine: FrameKey) -> bool:
        """True while the call ``engine`` names is ``frame`` or a frame above it (it has not
        returned)."""
        return called_from(frame, engine) == engine[2]

    def _reaches(self, root, target) -> bool:
        seen, stack = {id(root)}, [root]
        while stack:
            for parent in self.parents(stack.pop()):
                if parent is target:
                    return True
                if id(parent) not in seen:
                    seen.add(id(parent))
                    stack.append(parent)
        return False
