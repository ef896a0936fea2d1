"""Cycle detection and depth for the parent and prerequisite graphs (pure, no database)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def find_cycles(graph: Mapping[K, Iterable[K]]) -> list[list[K]]:
    """Return cycles as node paths ending where they start; empty when the graph is acyclic.

    Every cyclic graph yields at least one cycle; overlapping cycles may be reported once.
    """
    white, grey, black = 0, 1, 2
    colour: dict[K, int] = {}
    cycles: list[list[K]] = []
    for root in graph:
        if colour.get(root, white) != white:
            continue
        # Iterative DFS: frameworks are small, but recursion limits are not worth the risk.
        path: list[K] = [root]
        stack = [iter(graph.get(root, ()))]
        colour[root] = grey
        while stack:
            node = next(stack[-1], None)
            if node is None:
                stack.pop()
                colour[path.pop()] = black
                continue
            state = colour.get(node, white)
            if state == grey:
                cycles.append([*path[path.index(node) :], node])
            elif state == white:
                colour[node] = grey
                path.append(node)
                stack.append(iter(graph.get(node, ())))
    return cycles


def reaches(graph: Mapping[K, Iterable[K]], start: K, target: K) -> bool:
    """Whether `target` can be reached from `start` following the graph's edges."""
    seen: set[K] = set()
    todo = [start]
    while todo:
        node = todo.pop()
        if node == target:
            return True
        if node in seen:
            continue
        seen.add(node)
        todo.extend(graph.get(node, ()))
    return False


MAX_DEPTH = 20
"""Levels a framework's parent tree may have. Standards catalogues go five or six deep; pages
and reports walk the tree recursively, and a chain of hundreds broke every one of them."""


def depths(parents: Mapping[K, K | None]) -> dict[K, int]:
    """Each node's level (1 at the top) in an acyclic parent map; iterative, like find_cycles."""
    level: dict[K, int] = {}
    for node in parents:
        chain: list[K] = []
        current: K | None = node
        while current is not None and current not in level and current not in chain:
            chain.append(current)
            current = parents.get(current)
        base = level.get(current, 0) if current is not None else 0
        for depth, item in enumerate(reversed(chain), base + 1):
            level[item] = depth
    return level
