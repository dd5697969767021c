"""Plan the pausing or unpausing of many DAGs in a few ``PATCH /dags?dag_id_pattern=...`` calls.

How Airflow 2 (2.9.2, 2.10.x, 2.11.x: ``api_connexion/endpoints/dag_endpoint.py::patch_dags``)
applies the pattern: ``DagModel.dag_id.ilike(f"%{dag_id_pattern}%")`` on the active DAGs
(``only_active`` defaults to true) that the caller may edit, ordered by ``dag_id``, then
``offset``/``limit`` (``limit`` is capped by ``[api] maximum_page_limit``, 100 by default): one call
updates at most one page, and answers that page's DAGs with ``total_entries`` (every match). So:

- the pattern matches anywhere in the id (a substring, not a prefix), case-insensitively;
- ``_`` in the pattern is SQL's one-character wildcard and ``%`` any run of characters (DAG ids,
  ``[A-Za-z0-9_.-]`` in practice, hold ``_`` often: ``team_a`` also matches ``team-a`` and ``teamXa``);
- no escape character is portable (PostgreSQL and MySQL take a backslash, SQLite none), so patterns
  here never rely on one;
- the pattern ``~`` means every DAG.

The planner picks substrings of the ids to change (and runs of ``_``: ids of at least that length)
whose matches, evaluated as above over every DAG
id known on the environment, are ONLY ids to change (and, when the caller allows it, ids for which the
call changes nothing: pausing an already paused DAG): a DAG outside the set (paused by its owner, the
tool's own DR DAGs) is never selected. Ids it cannot cover so are listed for one call each.

A DAG paused by its owner whose id contains a live DAG's id (``x_v1`` paused, ``x`` live) makes every
substring of ``x`` select it: ``x`` gets its own call. So the calls an unpause takes depend on the
names: a handful when the owners' paused DAGs do not share their names' parts with the live ones, up
to one a DAG when they do.

Ids with characters outside ASCII are handled conservatively: an id to change that has one gets its
own call, and a non-ASCII character of another id is taken to match any one to three pattern
to three characters (a database's case folding of it is not known here).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, lru_cache

from mwaa_iac.core.dr import MWAA_IAC_DAG_IDS

PAGE = 100  # Airflow's default [api] maximum_page_limit: DAGs updated by one PATCH /dags
SEPARATORS = "_.-"
MAX_PATTERN = 250  # Airflow's DAG id length limit


@dataclass(frozen=True)
class Group:
    """One ``dag_id_pattern`` and the ids it selects (all of them in the set to change)."""

    pattern: str
    dag_ids: tuple[str, ...]  # the ids to change it selects
    selects: int = 0  # every known DAG it selects (ids to change and free ones): its pages

    def calls(self, page: int = PAGE) -> int:
        return max(1, math.ceil(max(self.selects, len(self.dag_ids)) / page))


@dataclass(frozen=True)
class BulkPlan:
    groups: tuple[Group, ...] = ()
    singles: tuple[str, ...] = ()  # one call each (PATCH /dags/<id>)
    page: int = PAGE
    covered: frozenset[str] = field(default=frozenset())

    @property
    def patterns(self) -> list[str]:
        return [g.pattern for g in self.groups]

    @property
    def calls(self) -> int:
        """The PATCH calls the plan takes (pages included)."""
        return sum(g.calls(self.page) for g in self.groups) + len(self.singles)


def like_matches(pattern: str, dag_id: str) -> bool:
    """``dag_id ILIKE '%<pattern>%'`` for ASCII ids, as Airflow's ``dag_id_pattern`` (``~`` is every
    DAG). A backslash in the pattern is refused: whether it escapes depends on the database."""
    if pattern == "~":
        return True
    return _compiled(pattern).search(dag_id.lower()) is not None


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    if "\\" in pattern:
        raise ValueError(f"pattern {pattern!r}: a backslash's meaning depends on the database")
    parts = []
    for char in pattern.lower():
        if char == "_":
            parts.append(".")
        elif char == "%":
            parts.append(".*")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts))


def may_match(pattern: str, dag_id: str) -> bool:
    """Whether ``pattern`` can select ``dag_id`` under any case folding of its non-ASCII characters
    (each taken to fold to any one to three characters). Equal to :func:`like_matches` for ASCII."""
    if dag_id.isascii():
        return like_matches(pattern, dag_id)
    if pattern == "~":
        return True
    subject = dag_id.lower()
    pat = pattern.lower()

    @cache
    def from_(i: int, j: int) -> bool:  # pattern from i matches a prefix of subject from j
        if i == len(pat):
            return True  # the trailing % of '%pattern%'
        c = pat[i]
        if c == "%":
            return any(from_(i + 1, k) for k in range(j, len(subject) + 1))
        if j == len(subject):
            return False
        s = subject[j]
        if s.isascii():
            return (c == "_" or c == s) and from_(i + 1, j + 1)
        # a non-ASCII subject character: it may fold to one to three characters of anything
        for n in range(1, 4):
            if i + n > len(pat) or pat[i + n - 1] == "%":
                return False
            if from_(i + n, j + 1):
                return True
        return False

    return any(from_(0, j) for j in range(len(subject) + 1))


def plan(
    known: Iterable[str], change: Iterable[str], *, free: Iterable[str] = (), page: int = PAGE
) -> BulkPlan:
    """The fewest calls (greedily) that select every id of ``change`` and nothing else of ``known``
    but ``free`` (ids a pattern may select because it changes nothing for them: already in the state
    asked for; empty unless the caller says so).

    A candidate pattern is a substring of an id to change starting at the id's start or after a
    separator (``_``, ``.``, ``-``), as short as it can be while matching no other known id (matching
    only gets narrower as a substring grows). Groups are then chosen greedily by ids newly covered per
    call (a group over ``page`` ids takes several calls); a group that would cover fewer than two new
    ids is not worth a pattern and its ids get a call each."""
    wanted = sorted(set(change))
    wanted_set = set(wanted)
    allowed = set(free) - wanted_set
    universe = set(known) | wanted_set
    others = sorted(universe - wanted_set - allowed)
    ascii_others = [o.lower() for o in others if o.isascii()]
    wide_others = [o for o in others if not o.isascii()]
    haystack = "\n".join(ascii_others)
    coverable = [w for w in wanted if w.isascii()]
    lowered = {w: w.lower() for w in coverable}

    @cache
    def safe(pattern: str) -> bool:
        rx = _compiled(pattern)
        if rx.search(haystack) is not None:  # '.' does not cross the newline between ids
            return False
        return not any(may_match(pattern, o) for o in wide_others)

    candidates: set[str] = set()
    for dag_id in coverable:
        text = lowered[dag_id]
        starts = [0] + [i + 1 for i, c in enumerate(text) if c in SEPARATORS and i + 1 < len(text)]
        for start in starts:
            end = len(text)
            if end - start > MAX_PATTERN or not safe(text[start:end]):
                continue
            low, high = start + 1, end  # the shortest safe text[start:k]
            while low < high:
                mid = (low + high) // 2
                if safe(text[start:mid]):
                    high = mid
                else:
                    low = mid + 1
            candidates.add(text[start:high])

    # ``_`` repeated k times selects the ids of k characters or more: a candidate too, when every
    # id it must not select is shorter (the DR DAGs' ids are short).
    longest = max((len(w) for w in coverable), default=0)
    for length in range(1, min(longest, MAX_PATTERN) + 1):
        if safe("_" * length):
            candidates.add("_" * length)
            break  # the shortest safe length selects the most

    matches: dict[str, frozenset[str]] = {}
    sizes: dict[str, int] = {}  # every DAG a pattern selects (free ones too): its pages
    spare = [f.lower() for f in sorted(allowed)]
    for pattern in candidates:
        rx = _compiled(pattern)
        matches[pattern] = frozenset(w for w in coverable if rx.search(lowered[w]))
        sizes[pattern] = len(matches[pattern]) + sum(1 for f in spare if may_match(pattern, f))

    groups: list[Group] = []
    uncovered = set(coverable)
    ordered = sorted(matches)
    while uncovered:
        best, score = None, (0.0, 0)
        for pattern in ordered:
            ids = matches[pattern]
            new = len(ids & uncovered)
            if new < 2:
                continue
            key = (new / max(1, math.ceil(sizes[pattern] / page)), -len(pattern))
            if best is None or key > score:
                best, score = pattern, key
        if best is None:
            break
        ids = matches[best]
        ordered.remove(best)
        groups.append(Group(best, tuple(sorted(ids)), sizes[best]))
        uncovered -= ids
    # A greedy choice may be made redundant by later ones (a page-sized group, then a larger one
    # that covers it too): drop those, the costliest first.
    for group in sorted(groups, key=lambda g: (-g.calls(page), g.pattern)):
        rest = set().union(*(g.dag_ids for g in groups if g is not group))
        if set(group.dag_ids) <= rest:
            groups.remove(group)
    singles = sorted(uncovered | {w for w in wanted if not w.isascii()})
    covered = frozenset(i for g in groups for i in g.dag_ids)
    return BulkPlan(groups=tuple(groups), singles=tuple(singles), page=page, covered=covered)


def plan_for(
    state: dict[str, bool],
    change: Iterable[str],
    paused: bool,
    *,
    reach_paused: bool = True,
    page: int = PAGE,
) -> BulkPlan:
    """The plan that sets ``change`` to ``paused`` among the DAGs of ``state`` (id -> paused). When
    pausing (``reach_paused``), patterns may also select DAGs already paused (pausing them changes
    nothing), never the tool's own DR DAGs; when unpausing, only the DAGs to change."""
    free = [d for d, p in state.items() if p and d not in MWAA_IAC_DAG_IDS] if paused and reach_paused else []
    return plan(state, change, free=free, page=page)
