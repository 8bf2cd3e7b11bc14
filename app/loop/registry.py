"""A registry of named actions, each allowed from a set of states and run by a handler: the
mechanism of the loop's case actions (`app.loop.service.ACTIONS`) and of the community's state
machines (deliberation's matters). Generic in the action type, so each user keeps its own fields
(a case action's permission and body, say) and its own answer when an action is refused."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

C = TypeVar("C")


class Spec(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def from_states(self) -> frozenset[str]: ...


S = TypeVar("S", bound=Spec)


class Registry(dict[str, S]):
    """Actions by name (a dict, so `REGISTRY[name]` and `.values()` work as before)."""

    def add(self, spec: S) -> S:
        if spec.name in self:
            raise ValueError(f"action {spec.name} is registered twice")
        self[spec.name] = spec
        return spec

    def allowed(self, state: str, may: Callable[[S], bool] | None = None) -> list[str]:
        """The actions that may start from `state` (and that `may` lets the caller do), sorted."""
        return sorted(
            s.name for s in self.values() if state in s.from_states and (may is None or may(s))
        )

    def machine(self) -> dict[str, set[str]]:
        """Each action and the states it may start from."""
        return {s.name: set(s.from_states) for s in self.values()}


@dataclass(frozen=True)
class Transition(Generic[C]):
    """A plain action: its name, where it may start, what it does to a context `C`."""

    name: str
    from_states: frozenset[str]
    handler: Callable[[C], Awaitable[None]]
    summary: str = ""


def transitions(
    registry: Registry[Transition[C]],
) -> Callable[..., Callable[[Callable[[C], Awaitable[None]]], Callable[[C], Awaitable[None]]]]:
    """A decorator registering handlers as `Transition`s:
    `@on("accept", {"proposed"}, "Accept")` above `async def _accept(ctx) -> None`."""

    def on(
        name: str, from_states: set[str], summary: str = ""
    ) -> Callable[[Callable[[C], Awaitable[None]]], Callable[[C], Awaitable[None]]]:
        def register(fn: Callable[[C], Awaitable[None]]) -> Callable[[C], Awaitable[None]]:
            registry.add(Transition(name, frozenset(from_states), fn, summary))
            return fn

        return register

    return on
