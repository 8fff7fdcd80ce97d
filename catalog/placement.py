"""Placement: which agents a service's new instances go to (pure, no I/O).

:func:`place` takes what the agents have free and the request (count, cpus, mem, host
ports, constraints) and answers one :class:`Placement` per instance, or raises
:class:`PlacementError` listing why each agent was turned down. It never over-commits
an agent (cpus, mem, ports) and never breaks a constraint.

Spread by default: each instance goes to the agent with the fewest instances of this
service, then the most free memory. Constraints (``[attribute, operator, value?]``, on
any attribute, ``hostname`` included), as in Marathon:

- ``UNIQUE``           no two instances share a value of the attribute;
- ``CLUSTER [value]``  every instance on that value (without one: all on one value);
- ``GROUP_BY [n]``     spread evenly over the attribute's values (``n`` is a hint);
- ``LIKE regex``       the attribute matches the regex (whole value);
- ``UNLIKE regex``     it does not (an agent without the attribute qualifies);
- ``MAX_PER n``        at most ``n`` instances per value of the attribute.

An agent lacking an attribute that ``UNIQUE``, ``CLUSTER``, ``GROUP_BY``, ``LIKE`` or
``MAX_PER`` names does not qualify.

Named volumes add an implicit rule: Docker names a volume by the spec alone, so two
instances on one agent would mount the same volume (two databases on one data
directory). A spec with named volumes therefore gets at most one instance per agent, as
if it said ``[hostname, UNIQUE]`` on the agent itself — unless every named volume says
``"shared": true`` (software that coordinates access itself). See
:func:`exclusive_volumes`; ``place(..., mounted=...)`` also keeps new instances off the
agents where instances outside ``existing`` (an older generation) mount the volumes.

Regexes run on RE2 where it is installed (linear time: a package cannot stall the
scheduler).

Cost: agents are filtered once per call, then kept in one heap per ``GROUP_BY`` group
keyed by (instances of this service, -free memory); placing an instance touches one
agent, so a call is O(agents + count · log agents).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import re2  # linear-time regexes for LIKE / UNLIKE (google-re2 is a Berth dependency)

from .errors import PlacementError

__all__ = ["AgentView", "PlacementRequest", "Placement", "place", "exclusive_volumes",
           "OPERATORS"]

OPERATORS = ("UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER")
EPSILON = 1e-9
MAX_REASONS = 100


def exclusive_volumes(spec: Mapping[str, Any]) -> tuple[str, ...]:
    """The named volumes of ``spec`` that allow only one of its instances per agent.

    Every named volume not marked ``"shared": true``; none when all of them are shared
    (or there are none). Host folders are left out: a spec names them on purpose.
    """
    return tuple(str(v["name"]) for v in spec.get("volumes") or []
                 if v.get("name") and not v.get("shared"))


@dataclass(frozen=True)
class AgentView:
    """What placement knows of one agent."""

    id: str
    attributes: Mapping[str, str]
    cpus_free: float
    mem_free: int                                 # MiB
    ports_free: tuple[int, ...]                   # free ports of its range, ascending
    schedulable: bool = True                      # False when unreachable or draining
    port_range: tuple[int, int] | None = None     # lets fixed ports outside it be used
    ports_taken: frozenset[int] = frozenset()     # fixed ports in use outside the range


@dataclass(frozen=True)
class PlacementRequest:
    """How many instances of what size, with which ports and constraints."""

    count: int
    cpus: float
    mem: int
    ports: int = 0                                # host ports to assign per instance
    fixed_ports: tuple[int, ...] = ()             # host ports the spec fixes (non-zero)
    constraints: tuple[tuple[str, ...], ...] = ()
    port_layout: tuple[int, ...] = ()             # each spec port's hostPort (0 = assign)
    exclusive: tuple[str, ...] = ()               # volumes: one instance per agent
    service: str = ""                             # its name, for the error messages

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], count: int,
                  service: str = "") -> PlacementRequest:
        """The request for ``count`` instances of a validated service spec."""
        layout = tuple(int(p.get("hostPort") or 0) for p in spec.get("ports") or [])
        return cls(count=count, cpus=float(spec.get("cpus") or 0),
                   mem=int(spec.get("mem") or 0), ports=sum(1 for p in layout if p == 0),
                   fixed_ports=tuple(p for p in layout if p), port_layout=layout,
                   constraints=tuple(tuple(str(x) for x in c)
                                     for c in spec.get("constraints") or ()),
                   exclusive=exclusive_volumes(spec), service=service)


@dataclass(frozen=True)
class Placement:
    """One instance's agent and host ports (in spec order: fixed and assigned)."""

    agent_id: str
    ports: tuple[int, ...] = ()


@dataclass
class _Rules:
    """The parsed constraints of one request."""

    unique: list[str] = field(default_factory=list)
    max_per: list[tuple[str, int]] = field(default_factory=list)
    cluster: dict[str, str | None] = field(default_factory=dict)
    group_by: list[str] = field(default_factory=list)
    like: list[tuple[str, Any, str]] = field(default_factory=list)
    unlike: list[tuple[str, Any, str]] = field(default_factory=list)

    counted: set[str] = field(default_factory=set)     # per-value counts matter
    required: set[str] = field(default_factory=set)    # an agent must have these
    _matches: dict[tuple[int, str], bool] = field(default_factory=dict)

    def finish(self) -> _Rules:
        """Derive the attribute sets once the constraints are read."""
        self.counted = {*self.unique, *(a for a, _ in self.max_per), *self.group_by}
        self.required = {*self.counted, *self.cluster, *(a for a, _, _ in self.like)}
        return self

    def matches(self, pattern: Any, value: str) -> bool:
        """``pattern.fullmatch(value)``, remembered (agents share few distinct values)."""
        key = (id(pattern), value)
        found = self._matches.get(key)
        if found is None:
            found = self._matches[key] = pattern.fullmatch(value) is not None
        return found


def _bad(index: int, message: str) -> PlacementError:
    return PlacementError("invalid constraint", details=[{"path": f"constraints/{index}",
                                                         "message": message}])


def _parse_rules(constraints: Iterable[Sequence[str]]) -> _Rules:
    """Constraints as rules.

    :raises PlacementError: for an unknown operator, a bad number or regex.
    """
    rules = _Rules()
    for index, raw in enumerate(constraints):
        parts = [str(p) for p in raw]
        if len(parts) not in (2, 3) or parts[1] not in OPERATORS:
            raise _bad(index, f"expected [attribute, one of {', '.join(OPERATORS)}, value?]")
        attr, op, value = parts[0], parts[1], parts[2] if len(parts) == 3 else None
        if op == "UNIQUE":
            rules.unique.append(attr)
        elif op == "MAX_PER":
            if value is None or not value.isdigit() or int(value) < 1:
                raise _bad(index, "MAX_PER needs a positive whole number")
            rules.max_per.append((attr, int(value)))
        elif op == "CLUSTER":
            known = rules.cluster.get(attr)
            if known is not None and value is not None and value != known:
                value = "\0" + known + "\0" + value  # two values at once: nothing qualifies
            if value is not None or attr not in rules.cluster:
                rules.cluster[attr] = value
        elif op == "GROUP_BY":
            if value is not None and not value.isdigit():
                raise _bad(index, "GROUP_BY takes an optional whole number")
            rules.group_by.append(attr)
        else:
            if value is None:
                raise _bad(index, f"{op} needs a regular expression")
            try:
                pattern = re2.compile(value)
            except Exception as exc:  # re2 raises its own error type
                raise _bad(index, f"bad regular expression: {exc}") from None
            (rules.like if op == "LIKE" else rules.unlike).append((attr, pattern, value))
    return rules.finish()


def _static_reason(agent: AgentView, rules: _Rules, request: PlacementRequest) -> str | None:
    """Why ``agent`` cannot take even one instance, whatever else is placed; or None."""
    if not agent.schedulable:
        return "not schedulable (unreachable or draining)"
    attrs = agent.attributes
    for attr in rules.required:
        if attr not in attrs:
            return f"has no attribute {attr!r}"
    for attr, value in rules.cluster.items():
        if value is not None and attrs[attr] != value:
            return f"{attr}={attrs[attr]} is not {value} (CLUSTER)"
    for attr, pattern, text in rules.like:
        if not rules.matches(pattern, attrs[attr]):
            return f"{attr}={attrs[attr]} does not match {text!r} (LIKE)"
    for attr, pattern, text in rules.unlike:
        if attr in attrs and rules.matches(pattern, attrs[attr]):
            return f"{attr}={attrs[attr]} matches {text!r} (UNLIKE)"
    reason = _resource_reason(agent.cpus_free, agent.mem_free, len(agent.ports_free), request)
    if reason is None and request.fixed_ports:
        reason = _fixed_port_reason(agent, set(agent.ports_free), request)
    return reason


def _resource_reason(cpus: float, mem: int, ports: int, request: PlacementRequest) -> str | None:
    if cpus + EPSILON < request.cpus:
        return f"needs {request.cpus:g} cpus, {max(cpus, 0):.3g} free"
    if mem < request.mem:
        return f"needs {request.mem} MiB memory, {mem} free"
    if ports < request.ports:
        return f"needs {request.ports} host ports, {ports} free"
    return None


def _fixed_port_reason(agent: AgentView, free: set[int], request: PlacementRequest,
                       used: set[int] | None = None) -> str | None:
    for port in request.fixed_ports:
        if port in (used or ()):
            return f"host port {port} is taken"
        if port in free:
            continue
        low, high = agent.port_range or (0, -1)
        if agent.port_range is None or low <= port <= high or port in agent.ports_taken:
            return f"host port {port} is taken"
    return None


class _AgentState:
    """The changing part of one agent during a call (built only for agents used)."""

    __slots__ = ("view", "cpus", "mem", "free", "used")

    def __init__(self, view: AgentView) -> None:
        self.view = view
        self.cpus = view.cpus_free
        self.mem = view.mem_free
        self.free: list[int] | None = None
        self.used: set[int] = set()

    def take_ports(self, request: PlacementRequest) -> tuple[int, ...]:
        """Assign the fixed ports and the lowest free ones, in spec order."""
        if self.free is None:
            self.free = list(self.view.ports_free)
        fixed = set(request.fixed_ports)
        if fixed:
            self.free = [p for p in self.free if p not in fixed]
            self.used |= fixed
        assigned = self.free[:request.ports]
        del self.free[:request.ports]
        layout = request.port_layout or (*request.fixed_ports, *([0] * request.ports))
        pool = iter(assigned)
        return tuple(p if p else next(pool) for p in layout)

    def reason(self, request: PlacementRequest) -> str | None:
        """Why it cannot take one more instance now, or None."""
        free = self.free if self.free is not None else self.view.ports_free
        return _resource_reason(self.cpus, self.mem, len(free), request) or (
            _fixed_port_reason(self.view, set(free), request, self.used)
            if request.fixed_ports else None)


class _Placer:
    """One call of :func:`place`: the agents, their heaps and the running counts."""

    def __init__(self, request: PlacementRequest, agents: Sequence[AgentView],
                 existing: Iterable[tuple[str, Mapping[str, str]]],
                 mounted: Iterable[str] = ()) -> None:
        self.request = request
        self.rules = _parse_rules(request.constraints)
        self.per_agent: Counter[str] = Counter()
        self.counts: dict[str, Counter[str]] = {a: Counter() for a in self.rules.counted}
        self.cluster = dict(self.rules.cluster)
        self.existing = 0
        for agent_id, attrs in existing:
            self._count(agent_id, attrs)
            self.existing += 1
        self.holders = set(self.per_agent)   # agents running an instance that stays
        self.mounted = set(mounted) if request.exclusive else set()
        self.crowded = False                 # the volume rule turned an agent down
        self.rejected: dict[str, str] = {}
        self.states: dict[str, _AgentState] = {}
        self.groups: dict[tuple[str, ...], list[tuple[int, int, str, int]]] = {}
        self.agents = list(agents)
        self._build_heaps()

    def _count(self, agent_id: str, attrs: Mapping[str, str]) -> None:
        self.per_agent[agent_id] += 1
        for attr, counter in self.counts.items():
            if attr in attrs:
                counter[attrs[attr]] += 1
        for attr, value in self.cluster.items():
            if value is None and attr in attrs:
                self.cluster[attr] = attrs[attr]

    def _build_heaps(self) -> None:
        """One heap per GROUP_BY group; agents are checked lazily, when first popped."""
        per_agent = self.per_agent
        group_by = self.rules.group_by
        if not group_by:
            self.groups[()] = [(per_agent[a.id] if per_agent else 0, -a.mem_free, a.id, i)
                               for i, a in enumerate(self.agents)]
        else:
            for index, agent in enumerate(self.agents):
                attrs = agent.attributes
                if all(a in attrs for a in group_by):
                    key = tuple(attrs[a] for a in group_by)
                    entry = (per_agent[agent.id], -agent.mem_free, agent.id, index)
                    self.groups.setdefault(key, []).append(entry)
                else:
                    self.rejected[agent.id] = _static_reason(agent, self.rules, self.request) or ""
        for heap in self.groups.values():
            heapq.heapify(heap)

    def _best_group(self) -> tuple[str, ...] | None:
        """The non-empty group whose GROUP_BY values have the fewest instances."""
        live = [g for g, heap in self.groups.items() if heap]
        if not live:
            return None
        if not self.rules.group_by:
            return live[0]
        attrs = self.rules.group_by
        return min(live, key=lambda g: ([self.counts[a][v] for a, v in zip(attrs, g,
                                                                           strict=True)], g))

    def _volume_reason(self, agent: AgentView) -> str | None:
        """Why the one-instance-per-agent rule of named volumes rules the agent out."""
        if not self.request.exclusive:
            return None
        if not self.per_agent[agent.id] and agent.id not in self.mounted:
            return None
        self.crowded = True
        return (f"already runs an instance of {self.request.service or 'the service'} "
                f"(each mounts {_volume_words(self.request.exclusive)})")

    def _dynamic_reason(self, agent: AgentView) -> str | None:
        """Why a constraint now rules the agent out for good (counts only grow)."""
        volume = self._volume_reason(agent)
        if volume:
            return volume
        attrs = agent.attributes
        for attr in self.rules.unique:
            if self.counts[attr][attrs[attr]]:
                return f"{attr}={attrs[attr]} already has an instance (UNIQUE)"
        for attr, limit in self.rules.max_per:
            if self.counts[attr][attrs[attr]] >= limit:
                return f"{attr}={attrs[attr]} already has {limit} (MAX_PER {limit})"
        for attr, value in self.cluster.items():
            if value is not None and attrs.get(attr) != value:
                return f"{attr}={attrs.get(attr)} is not {value} (CLUSTER)"
        return None

    def next_placement(self) -> Placement | None:
        """Place one instance, or None when no agent can take it."""
        while True:
            group = self._best_group()
            if group is None:
                return None
            heap = self.groups[group]
            _, _, agent_id, index = heapq.heappop(heap)
            agent = self.agents[index]
            state = self.states.get(agent_id)
            if state is None:
                reason = _static_reason(agent, self.rules, self.request)
                if reason:
                    self.rejected[agent_id] = reason
                    continue
                state = self.states[agent_id] = _AgentState(agent)
            reason = self._dynamic_reason(agent) or state.reason(self.request)
            if reason:
                self.rejected[agent_id] = reason
                continue
            ports = state.take_ports(self.request)
            state.cpus -= self.request.cpus
            state.mem -= self.request.mem
            self._count(agent_id, agent.attributes)
            heapq.heappush(heap, (self.per_agent[agent_id], -state.mem, agent_id, index))
            return Placement(agent_id, ports)

    def failure(self, placed: int) -> PlacementError:
        """The "not enough capacity" answer, with each agent's reason."""
        request = self.request
        for heap in self.groups.values():  # agents still in a heap: the last one failed
            for _, _, agent_id, index in heap:
                agent, state = self.agents[index], self.states.get(agent_id)
                why = (state.reason(request) if state
                       else _static_reason(agent, self.rules, request))
                self.rejected.setdefault(agent_id, why or self._dynamic_reason(agent)
                                         or "no room left")
        details = [{"path": f"agents/{a}", "message": m}
                   for a, m in sorted(self.rejected.items())]
        if len(details) > MAX_REASONS:
            more = len(details) - MAX_REASONS
            details = details[:MAX_REASONS] + [{"path": "agents",
                                                "message": f"… and {more} more agents"}]
        if not self.agents:
            details = [{"path": "agents", "message": "no agents are registered"}]
        crowded = self._crowded_failure(details)
        if crowded is not None:
            return crowded
        return PlacementError(
            f"not enough capacity: {placed} of {request.count} instances "
            f"({request.cpus:g} cpus, {request.mem} MiB, {request.ports + len(request.fixed_ports)}"
            f" ports each) could be placed", details=details,
            hint="add agents, free capacity, or relax the constraints")

    def _crowded_failure(self, details: list[dict[str, str]]) -> PlacementError | None:
        """The answer when one instance per agent (named volumes) is what does not fit:
        "4 instances of db need 4 agents: each mounts volume db-data; 3 agents can take
        one" — or None when the volume rule is not why placement failed."""
        request = self.request
        if not self.crowded:
            return None
        needed = self.existing + request.count
        able = len(self.holders) + sum(
            1 for a in self.agents if a.id not in self.holders and a.id not in self.mounted
            and _static_reason(a, self.rules, request) is None)
        if able >= needed:
            return None   # enough agents for one each: another reason is to blame
        name = request.service or "the service"
        busy = sum(1 for a in self.agents if a.id in self.mounted and a.id not in self.holders)
        older = (f" ({_plural(busy, 'more agent')} still run{'s' if busy == 1 else ''} "
                 f"an instance on its way out)") if busy else ""
        return PlacementError(
            f"{_plural(needed, 'instance')} of {name} need{'s' if needed == 1 else ''} "
            f"{_plural(needed, 'agent')}: each mounts {_volume_words(request.exclusive)}; "
            f"{_plural(able, 'agent')} can take one{older}",
            details=details,
            hint="add agents, run fewer instances, or mark the volumes \"shared\": true "
                 "if the software coordinates access to them itself")


def _plural(count: int, noun: str) -> str:
    """``1 agent``, ``3 agents``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _volume_words(names: Sequence[str]) -> str:
    """``volume web-data`` or ``volumes a, b``."""
    return f"volume{'s' if len(names) > 1 else ''} {', '.join(names)}"


def place(request: PlacementRequest, agents: Sequence[AgentView],
          existing: Iterable[tuple[str, Mapping[str, str]]] = (),
          mounted: Iterable[str] = ()) -> tuple[Placement, ...]:
    """Place ``request.count`` new instances; all of them or none.

    ``existing`` lists ``(agent_id, attributes)`` of the service's instances that stay,
    so spreading and constraints count them. ``mounted`` names agents where other
    instances of the service (an older generation, ones on their way out) still mount
    its volumes: with ``request.exclusive`` no new instance goes there either.

    :raises PlacementError: when not all fit (``details`` say why, agent by agent) or a
        constraint is malformed.
    """
    if request.count < 0 or request.cpus < 0 or request.mem < 0 or request.ports < 0:
        raise PlacementError("invalid placement request: negative count or size")
    placer = _Placer(request, agents, existing, mounted)
    placements: list[Placement] = []
    while len(placements) < request.count:
        placement = placer.next_placement()
        if placement is None:
            raise placer.failure(len(placements))
        placements.append(placement)
    return tuple(placements)
