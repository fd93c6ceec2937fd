"""The memory rules, in one place: what "no limit" is, and which limit is in effect.

Docker and the kernel say "no limit" in several ways: 0 in `HostConfig.Memory`, `max` in a
cgroup v2 `memory.max`, and on cgroup v1 the page counter's maximum rounded to a page
(9223372036854771712, about 2^63) in `memory.limit_in_bytes` and in memory.stat's
`hierarchical_memory_limit`. No real limit comes near 2^60 bytes (an exbibyte), so anything
at or above it is no limit.

A container's *own* limit is docker's `HostConfig.Memory`. The limit *in effect* is the
smallest on its cgroup's path to the root: cgroup v1's `hierarchical_memory_limit`, which the
sampler reads. The two differ when an ancestor has the limit (a `cgroup_parent`, a slice, a
pod): then the container shares that limit with every other container below it, and the
whole group runs out together (issue [11]: "the server ran out").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from incident_console.domain.durations import format_bytes

__all__ = [
    "NO_LIMIT_BYTES",
    "LimitScope",
    "ServerBudget",
    "effective_limit",
    "is_limit",
    "limit_or_zero",
    "is_shared_limit",
    "limit_scope",
    "parse_limit",
    "server_budget",
]

#: A limit at or above this is "no limit" (docker's and the kernel's ~2^63 included).
NO_LIMIT_BYTES = 1 << 60


class LimitScope(Enum):
    """Whose limit bounds a container's memory."""

    OWN = "own"  # its own cgroup's (docker's mem_limit)
    SHARED = "shared"  # an ancestor's, shared with the containers below it
    NONE = "none"  # nobody's: the host's RAM is the only bound


def is_limit(value: object) -> bool:
    """True for a real limit in bytes: a positive int below :data:`NO_LIMIT_BYTES`."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < NO_LIMIT_BYTES


def limit_or_zero(value: object) -> int:
    """The limit in bytes, 0 for none (0, negative, huge, not a number)."""
    return value if is_limit(value) else 0  # type: ignore[return-value]


def parse_limit(text: str) -> int | None:
    """A cgroup limit file's text ('max', '9223372036854771712', '268435456') -> bytes or None.

    None is "no limit" and also "not a number": neither bounds anything.
    """
    word = text.strip()
    if not word.isdigit() or len(word) > 30:
        return None
    value = int(word)
    return value if is_limit(value) else None


def effective_limit(own: int, sampled: int | None = None) -> int:
    """The limit in effect for a container, 0 for none.

    Args:
        own: docker's HostConfig.Memory (0 = none).
        sampled: what its cgroup reports (v1 hierarchical_memory_limit, v2 memory.max), when
            read: an ancestor's smaller limit shows there and not in `own`.
    """
    candidates = [x for x in (limit_or_zero(own), limit_or_zero(sampled)) if x]
    return min(candidates, default=0)


def limit_scope(own: int, sampled: int | None = None) -> LimitScope:
    """Whose limit is in effect: the container's own, an ancestor's, or nobody's."""
    mine, seen = limit_or_zero(own), limit_or_zero(sampled)
    if seen and (not mine or seen < mine):
        return LimitScope.SHARED
    return LimitScope.OWN if mine else LimitScope.NONE


def is_shared_limit(own: int, sampled: int | None = None) -> bool:
    """Whether the limit in effect is an ancestor's, shared with the containers below it."""
    return limit_scope(own, sampled) is LimitScope.SHARED


@dataclass(frozen=True, slots=True)
class ServerBudget:
    """What a server (or the group whose limit is shared) has left for one service.

    Attributes:
        ram_bytes: the bound: the host's RAM, or the shared limit of the group.
        ram_how: where that figure comes from, in words.
        others: (name, bytes) each other container of the group takes, largest first (the
            most it was seen to use: it needs that again).
        host_bytes: what the host itself uses beyond the containers (0 for a group limit,
            which holds only containers).
    """

    ram_bytes: int
    ram_how: str
    others: tuple[tuple[str, int], ...]
    host_bytes: int

    @property
    def others_bytes(self) -> int:
        """The other containers together."""
        return sum(b for _, b in self.others)

    @property
    def free_bytes(self) -> int:
        """What is left for the service: the bound minus the others and the host."""
        return max(self.ram_bytes - self.others_bytes - self.host_bytes, 0)

    def describe(self, service: str) -> str:
        """'768 MiB (the group's limit) - 180 MiB for 3 other containers (db 140 MiB, ...)'."""
        named = ", ".join(f"{n} {format_bytes(b)}" for n, b in self.others[:4])
        more = ", ..." if len(self.others) > 4 else ""
        others = (
            f" - {format_bytes(self.others_bytes)} for {len(self.others)} other container(s) "
            f"({named}{more})"
            if self.others
            else ""
        )
        host = f" - {format_bytes(self.host_bytes)} the host itself uses" if self.host_bytes else ""
        return (
            f"{format_bytes(self.ram_bytes)} ({self.ram_how}){others}{host} "
            f"= {format_bytes(self.free_bytes)} left for {service}"
        )


def server_budget(
    ram_bytes: int,
    ram_how: str,
    others: Mapping[str, int],
    host_bytes: int = 0,
) -> ServerBudget:
    """The budget of one service on a server with no limit for it (see :class:`ServerBudget`)."""
    ranked = sorted(((n, max(int(b), 0)) for n, b in others.items()), key=lambda x: (-x[1], x[0]))
    return ServerBudget(max(ram_bytes, 0), ram_how, tuple(ranked), max(host_bytes, 0))
