"""The walkthrough's variables, without the screen: discovered, filled in later, set by hand.

Pure bookkeeping over the engine's variables dict (no Textual here): what the operator set
(kept over every discovery), why each value is what it is, the candidates seen on the host,
and whether the compose project is still to be chosen.
"""

from __future__ import annotations

from collections.abc import Mapping

from incident_console.monitor.state import HostState
from incident_console.runbook.schema import VARIABLE_REF, Runbook, Step, render
from incident_console.runbook.variables import Variables, discover, kills_by_project, shown
from incident_console.ui.protocol import MonitorLike
from incident_console.ui.screens.variables_form import FormField

#: Proposed together, from the evidence: taken anew as one piece.
PROPOSAL = (
    "workers",
    "max_requests",
    "max_requests_jitter",
    "mem_limit",
    "mem_reservation",
    "memory_target",
    "worker_peak",
    "current_workers",
)


#: Found from the compose project's containers: never pre-filled before the project is chosen.
FROM_PROJECT = frozenset({"container", "compose_file", "project_dir", "health_url"})


def step_variables(step: Step) -> list[str]:
    """The variables a step names anywhere (title, why, action, checks), in order."""
    names: list[str] = []
    for match in VARIABLE_REF.finditer(step.model_dump_json()):
        if match.group(1) not in names:
            names.append(match.group(1))
    return names


class WalkVariables:
    """The variables of one walkthrough.

    Args:
        monitor: the host's monitor (its state is read, never changed).
        runbook: the runbook walked.
        selected: the container selected on the dashboard (its project is offered first).
        discovering: False when the caller gave the values (they are kept as given).
    """

    def __init__(
        self, monitor: MonitorLike, runbook: Runbook, selected: str | None, discovering: bool
    ) -> None:
        self.monitor = monitor
        self.runbook = runbook
        self.selected = selected
        self.discovering = discovering
        self.why: dict[str, str] = {}
        self.candidates: dict[str, list[str]] = {}
        self.ambiguous = ""
        #: What the operator set (the form, the project question).
        self.overrides: dict[str, str] = {}

    @property
    def state(self) -> HostState:
        return self.monitor.state

    def discover(self) -> Variables:
        """Everything anew from the monitor's state, with the operator's values."""
        host = self.monitor.host
        address = "" if getattr(host, "is_local", True) else str(getattr(host, "host", "") or "")
        found = discover(
            self.state,
            self.runbook,
            self.overrides,
            host_name=host.name,
            probes=list(getattr(self.monitor, "probes", []) or []),
            host_address=address,
        )
        for name, why in found.why.items():
            self.why[name] = self.why.get(name, why) if name in self.overrides else why
        self.candidates = found.candidates
        self.ambiguous = "" if self.overrides.get("project") else found.ambiguous
        return found

    def fill_unknown(self, values: dict[str, str]) -> dict[str, str]:
        """What a new discovery knows that `values` does not, and the proposal anew."""
        found = self.discover().values
        fresh = {k: v for k, v in found.items() if v and not values.get(k)}
        # The proposal follows the evidence as it grows (until a change is made, which the
        # caller checks), as one piece: its values only hold together.
        fresh.update({k: found[k] for k in PROPOSAL if k not in self.overrides})
        return {k: v for k, v in fresh.items() if values.get(k) != v}

    def apply(
        self, values: dict[str, str], changes: Mapping[str, str], how: str, *, frozen: bool
    ) -> None:
        """The operator's `changes` into `values`; what follows from them is found again,
        unless `frozen` (a change was made: the rest stays as that change used it)."""
        self.overrides.update(changes)
        if self.discovering and not frozen:
            derived = self.discover().values
            values.clear()
            values.update(derived)
        else:
            values.update(changes)
            if self.discovering:
                self.discover()
        for name in changes:
            self.why[name] = how

    def service_ids(self, values: Mapping[str, str]) -> set[str]:
        """The running containers of the service (in the project, when one is chosen)."""
        service, project = values.get("service", ""), values.get("project", "")
        return {
            cid
            for cid, view in self.state.containers.items()
            if not view.gone
            and view.info.state == "running"
            and view.info.service == service
            and (not project or view.info.project == project)
        }

    def missing(self, step: Step, values: Mapping[str, str]) -> list[str]:
        """The variables `step` requires that are unknown."""
        names = dict.fromkeys((*self.runbook.requires, *step.requires))
        return [n for n in names if not values.get(n)]

    def projects(self) -> tuple[list[str], str]:
        """(candidate projects, the selected container's) with the selected one first."""
        projects = list(self.candidates.get("project", []))
        mine = self.state.containers.get(self.selected or "")
        first = mine.info.project if mine is not None else ""
        if first in projects:
            projects.remove(first)
            projects.insert(0, first)
        return projects, first

    def project_options(self, service: str) -> list[tuple[str, str]]:
        """(project, label) to choose from, the selected container's first."""
        projects, first = self.projects()
        kills = kills_by_project(self.state, service)
        return [
            (
                p,
                f"{p}  ({kills[p]} OOM kill(s) of {service})"
                + ("  - the selected container's project" if p == first else ""),
            )
            for p in projects
        ]

    def form_fields(self, step: Step, values: Mapping[str, str]) -> list[FormField]:
        """The step's missing variables first (the project when it is to be chosen), then the
        others it names, each with its value, reason and the candidates seen."""
        missing = self.missing(step, values)
        if self.ambiguous and "project" not in missing and not values.get("project"):
            missing.insert(0, "project")
        names = [*missing, *(n for n in step_variables(step) if n not in missing)]
        offered = {**self.candidates, "project": self.projects()[0]}
        choosing = "project" in missing

        def prefill(name: str) -> str:
            seen = offered.get(name, [])
            if name == "project":
                return seen[0] if seen else ""  # the selected container's, first
            if choosing and name in FROM_PROJECT:
                return ""  # found from the project once it is chosen, never another one's
            return seen[0] if len(seen) == 1 else ""

        return [
            FormField(
                name,
                values.get(name, ""),
                self.why.get(name, ""),
                tuple(offered.get(name, [])),
                missing=name in missing,
                prefill=prefill(name),
            )
            for name in names
        ]

    @staticmethod
    def title(step: Step, values: Mapping[str, str]) -> str:
        """The step's title for a person: an unknown value reads 'unknown'."""
        return render(step.title, shown(values))
