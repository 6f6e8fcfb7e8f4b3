"""Generalisation hierarchies: a tree above a column's values, given by the caller.

A `Hierarchy` maps each leaf value to its ancestors, nearest first, for example an address to
``(building, community, district)``. Every path has the same length, and an implicit root ``"*"``
sits above the last level. Level 0 is the value itself, level 1 its nearest ancestor, and so on;
levels may also be named. Values that are not in the hierarchy are an error, never silently
mapped to ``"*"``: a stale hierarchy must be noticed, not publish everything as ``"*"``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

from zhishe.core.errors import Invalid

__all__ = ["ROOT", "Hierarchy"]

#: The label of the implicit root above every hierarchy: "any value".
ROOT = "*"


class Hierarchy:
    """A tree above a column's values: each leaf maps to its ancestors, nearest first."""

    __slots__ = ("_ancestors", "_leaves_by_label", "depth", "levels")

    def __init__(self, ancestors: Mapping[Hashable, Sequence[str]], *, levels: Sequence[str] = ()) -> None:
        paths = {leaf: tuple(str(a) for a in path) for leaf, path in ancestors.items()}
        if not paths:
            raise Invalid("A hierarchy needs at least one value.", detail={"field": "hierarchy"})
        depths = {len(p) for p in paths.values()}
        if len(depths) != 1 or 0 in depths:
            raise Invalid(
                "Every value of a hierarchy needs the same number of ancestors (at least one).",
                detail={"field": "hierarchy"},
            )
        self.depth = depths.pop()
        if levels and len(levels) != self.depth:
            raise Invalid(
                f"The hierarchy has {self.depth} levels but {len(levels)} level names were given.",
                detail={"field": "hierarchy.levels"},
            )
        self.levels: tuple[str, ...] = tuple(levels)
        parent: dict[tuple[int, str], str] = {}
        for leaf, path in paths.items():
            for i in range(self.depth - 1):
                seen = parent.setdefault((i, path[i]), path[i + 1])
                if seen != path[i + 1]:
                    raise Invalid(
                        f"Hierarchy node '{path[i]}' has two parents ('{seen}' and '{path[i + 1]}'), "
                        f"seen at value {leaf!r}.",
                        detail={"field": "hierarchy"},
                    )
        self._ancestors = paths
        by_label: dict[str, frozenset[Hashable]] = {}
        for level in range(self.depth - 1, -1, -1):  # lowest level wins when a label repeats
            groups: dict[str, set[Hashable]] = {}
            for leaf, path in paths.items():
                groups.setdefault(path[level], set()).add(leaf)
            by_label.update({label: frozenset(leaves) for label, leaves in groups.items()})
        by_label[ROOT] = frozenset(paths)
        self._leaves_by_label = by_label

    def __contains__(self, value: object) -> bool:
        return value in self._ancestors

    def __repr__(self) -> str:
        return f"Hierarchy({len(self._ancestors)} values, depth={self.depth}, levels={self.levels!r})"

    @property
    def values(self) -> tuple[Hashable, ...]:
        """The leaf values, in tree order (siblings together)."""
        return tuple(sorted(self._ancestors, key=lambda v: (*reversed(self._ancestors[v]), str(v))))

    def level_index(self, level: str | int) -> int:
        """The index (1 = nearest ancestor) of a level given by name or index."""
        if isinstance(level, bool):
            raise Invalid(f"Hierarchy level {level!r} is not a name or an index.", detail={"field": "level"})
        if isinstance(level, int):
            if not 1 <= level <= self.depth:
                raise Invalid(
                    f"Hierarchy level {level} is out of range 1..{self.depth}.", detail={"field": "level"}
                )
            return level
        if level in self.levels:
            return self.levels.index(level) + 1
        known = ", ".join(self.levels) or "none"
        raise Invalid(f"Hierarchy has no level named '{level}' (known: {known}).", detail={"field": "level"})

    def path(self, value: Hashable) -> tuple[str, ...]:
        """The ancestors of a value, nearest first; KeyError when the value is unknown."""
        return self._ancestors[value]

    def ancestor(self, value: Hashable, level: int) -> str:
        """The ancestor of `value` at `level` (1 = nearest); the value itself as text at level 0."""
        return str(value) if level == 0 else self._ancestors[value][level - 1]

    def truncated(self, level: int) -> Hierarchy:
        """The hierarchy above `level`: its leaves are the level's nodes."""
        if level == 0:
            return self
        upper: dict[Hashable, tuple[str, ...]] = {}
        for path in self._ancestors.values():
            upper[path[level - 1]] = path[level:]
        if level == self.depth:  # only the root is above the top level
            return Hierarchy({node: (ROOT,) for node in upper})
        return Hierarchy(upper, levels=self.levels[level:])

    def leaves_under(self, label: str) -> frozenset[Hashable] | None:
        """The leaf values under a node label (``"*"`` is all), or None if no node has that label."""
        return self._leaves_by_label.get(label)
