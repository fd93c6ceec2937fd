"""The watch policy: probes, rules and limits, from a small YAML file with line-numbered errors.

A policy says what `incident-console watch` looks at (HTTP probes and their interval), when it
acts (a probe failing K times in a row, a container unhealthy for N s, an OOM kill, the time to
a memory limit under T) and how much it may act (at most N restarts per service per hour, with
a doubling backoff). Errors are reported the way runbook errors are: ``file:line:col: message``.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from incident_console.domain.durations import parse_duration
from incident_console.runbook.loader import LoadError, _position, validate_yaml

__all__ = [
    "DEFAULT_POLICY",
    "Limits",
    "Notify",
    "Policy",
    "PolicyError",
    "Probe",
    "Rule",
    "load_policy",
    "parse_policy",
]

#: The policy shipped with the package: the seed's monitor_access.sh.
DEFAULT_POLICY = "default-policy.yaml"

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class PolicyError(Exception):
    """A policy could not be loaded; `errors` holds every problem, each with its line."""

    def __init__(self, errors: list[LoadError]) -> None:
        self.errors = errors
        super().__init__(str(errors[0]) if errors else "invalid policy")


def _seconds(value: Any) -> float:
    """A duration field: '30s', '2m', '1h30m' or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 2m, 1h")
    seconds = float(value) if isinstance(value, int | float) else parse_duration(value)
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


#: A duration field: '30s', '2m', '1h30m' or a number of seconds.
Duration = Annotated[float, BeforeValidator(_seconds)]


def expand_env(text: str) -> str:
    """Replace ``${NAME}`` and ``${NAME:-default}`` with the environment (for URLs, commands).

    Raises:
        ValueError: a variable is not set and has no default.
    """

    def sub(match: re.Match[str]) -> str:
        value = os.environ.get(match.group(1))
        if value is None or (value == "" and match.group(2) is not None):
            if match.group(2) is None:
                raise ValueError(f"environment variable {match.group(1)} is not set")
            return match.group(2)
        return value

    return _ENV_REF.sub(sub, text)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


#: A probe URL that asks watch to find the URL on the host (a published port of the
#: frontend/proxy, the path from the service's healthcheck). Until a URL is found the probe is
#: off, as with no URL at all: a default never probes, or acts on, a URL nobody configured.
DISCOVER = "discover"


class Probe(_Model):
    """An HTTP GET from the watching machine; 2xx and 3xx are up.

    `url` is an http(s) URL, or `discover` / empty: no URL configured, the probe is off (and
    so are the rules on it) until one is configured or discovered (`with_url`).
    """

    name: str
    url: str
    interval: Duration = 30.0
    timeout: Duration = 5.0
    #: The target (as named on the command line) this probe belongs to; default: the first.
    host: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"invalid probe name {value!r}: letters, digits, '.', '_', '-'")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = expand_env(value).strip()
        if value in ("", DISCOVER):
            return value
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(
                f"invalid probe URL {value!r}: expected http:// or https:// (or {DISCOVER})"
            )
        return value

    @property
    def configured(self) -> bool:
        """The probe has a URL to GET (not empty, not waiting for discovery)."""
        return self.url not in ("", DISCOVER)

    @property
    def discover(self) -> bool:
        """The URL is to be found on the host (the discovery hook; off until found)."""
        return self.url == DISCOVER

    def with_url(self, url: str) -> Probe:
        """This probe with a URL found on the host (for `discover`); validated like any."""
        return Probe.model_validate({**self.model_dump(), "url": url})

    @model_validator(mode="after")
    def _positive(self) -> Probe:
        if self.interval <= 0 or self.timeout <= 0:
            raise ValueError("interval and timeout must be positive")
        return self


class ProbeFails(_Model):
    """Trigger: the probe failed `times` times in a row."""

    probe: str
    times: int = Field(default=3, ge=1)


class Unhealthy(_Model):
    """Trigger: a container (of `service`, or any) has been unhealthy for `for_` seconds."""

    service: str | None = None
    for_: Duration = Field(default=60.0, alias="for")


class OomKillTrigger(_Model):
    """Trigger: the kernel OOM-killed a process (in `service`, or anywhere)."""

    service: str | None = None


class TimeToLimit(_Model):
    """Trigger: a container's memory reaches its limit in less than `below` at the current trend."""

    service: str | None = None
    below: Duration = 600.0


_TRIGGERS = ("probe_fails", "unhealthy", "oom_kill", "time_to_limit")


class Rule(_Model):
    """When something happens, restart a container/service or notify.

    Exactly one trigger is set. `target` names the service or container to restart; by default
    the one the trigger is about (required for `probe_fails`, which is about a URL).
    """

    name: str
    probe_fails: ProbeFails | None = None
    unhealthy: Unhealthy | None = None
    oom_kill: OomKillTrigger | None = None
    time_to_limit: TimeToLimit | None = None
    action: Literal["restart", "notify"] = "notify"
    target: str | None = None

    @model_validator(mode="after")
    def _one_trigger(self) -> Rule:
        set_ = [t for t in _TRIGGERS if getattr(self, t) is not None]
        if len(set_) != 1:
            raise ValueError(
                f"rule {self.name!r} needs exactly one trigger of {', '.join(_TRIGGERS)}"
                + (f" (has {', '.join(set_)})" if set_ else "")
            )
        if self.action == "restart" and self.probe_fails is not None and not self.target:
            raise ValueError(f"rule {self.name!r}: restart on probe_fails needs a target")
        return self

    @property
    def trigger(self) -> str:
        """Which trigger this rule has."""
        return next(t for t in _TRIGGERS if getattr(self, t) is not None)


class Limits(_Model):
    """How much watch may act: per host and service, in a sliding hour."""

    restarts_per_hour: int = Field(default=3, ge=0)
    #: Wait this long after a restart before the next of the same service; doubled each time.
    backoff: Duration = 60.0
    backoff_max: Duration = 900.0
    #: Notify about the same (rule, target) at most this often (OOM kills: every kill, up to
    #: `notifications_per_hour`).
    renotify: Duration = 600.0
    notifications_per_hour: int = Field(default=30, ge=1)


class Notify(_Model):
    """Where notifications go: a command (JSON event on stdin) and/or a webhook (JSON POST)."""

    command: list[str] | None = None
    webhook: str | None = None
    timeout: Duration = 10.0

    @field_validator("command")
    @classmethod
    def _command(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("command is an argv list and cannot be empty")
        return [expand_env(part) for part in value] if value else value

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = expand_env(value)
        if not value:
            return None  # ${WEBHOOK:-} left empty: no webhook
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"invalid webhook URL {value!r}: expected http:// or https://")
        return value


class Policy(_Model):
    """A whole watch policy."""

    probes: list[Probe] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    notify: Notify = Field(default_factory=Notify)
    #: The compose project watched and acted on (None: every container on the host). A
    #: `target` may also name one as ``project/service``.
    project: str | None = None
    #: How long a restart waits for a container to stop before killing it (docker's -t).
    stop_timeout: Duration = 10.0
    #: How often the status line is printed; default: the shortest probe interval (or 30 s).
    status_interval: Duration | None = None

    @property
    def tick_s(self) -> float:
        """The status line interval."""
        if self.status_interval:
            return self.status_interval
        return min((p.interval for p in self.active_probes), default=30.0)

    def probe(self, name: str) -> Probe | None:
        """The probe called `name`."""
        return next((p for p in self.probes if p.name == name), None)

    @property
    def active_probes(self) -> list[Probe]:
        """The probes that have a URL: the only ones probed, and acted on."""
        return [p for p in self.probes if p.configured]

    def rule_is_off(self, rule: Rule) -> bool:
        """A probe_fails rule whose probe has no URL never fires."""
        if rule.probe_fails is None:
            return False
        probe = self.probe(rule.probe_fails.probe)
        return probe is None or not probe.configured

    def probe_notes(self) -> list[str]:
        """What is not probed and what that turns off, one line each (startup, --check)."""
        off = [p for p in self.probes if not p.configured]
        if not off:
            return []
        rules = [r for r in self.rules if self.rule_is_off(r)]
        restarts = [r for r in rules if r.action == "restart"]
        waiting = [p.name for p in off if p.discover]
        line = f"no probe configured (no URL for {', '.join(p.name for p in off)}): not probed"
        if restarts:
            line += "; " + ", ".join(
                f"{r.target} restarts on probe failure are off" for r in restarts
            )
        notifies = [r.name for r in rules if r.action != "restart"]
        if notifies:
            line += f"; no notice from {', '.join(notifies)}"
        notes = [line]
        if waiting:
            notes.append(
                f"probe {', '.join(waiting)}: url is '{DISCOVER}' (watch acts on no URL it"
                " was not given); give a URL with the environment variable the policy names, or url: in a"
                " policy file (watch --print-policy)"
            )
        return notes


def _semantic_errors(file: str, tree: Any, policy: Policy) -> list[LoadError]:
    errors: list[LoadError] = []

    def add(path: tuple[str | int, ...], message: str) -> None:
        line, col = _position(tree, path)
        errors.append(LoadError(file, line + 1, col + 1, message))

    seen: set[str] = set()
    for i, probe in enumerate(policy.probes):
        if probe.name in seen:
            add(("probes", i, "name"), f"probes[{i}].name: duplicate probe {probe.name!r}")
        seen.add(probe.name)
    names: set[str] = set()
    for i, rule in enumerate(policy.rules):
        if rule.name in names:
            add(("rules", i, "name"), f"rules[{i}].name: duplicate rule {rule.name!r}")
        names.add(rule.name)
        if rule.probe_fails is not None and rule.probe_fails.probe not in seen:
            add(
                ("rules", i, "probe_fails", "probe"),
                f"rules[{i}].probe_fails.probe: unknown probe {rule.probe_fails.probe!r}"
                f" (probes: {', '.join(sorted(seen)) or 'none'})",
            )
    return errors


def parse_policy(text: str, file: str = "<policy>") -> Policy:
    """Parse and validate policy text.

    Raises:
        PolicyError: every problem found, each with its line and column.
    """
    return validate_yaml(
        text,
        file,
        Policy,
        _semantic_errors,
        PolicyError,
        "a policy is a mapping (probes, rules, limits)",
    )


def default_policy_path() -> Path:
    """The default policy shipped with the package."""
    return Path(str(resources.files("incident_console.watch") / DEFAULT_POLICY))


def load_policy(path: str | Path | None = None) -> Policy:
    """Load the policy at `path` (default: the shipped one).

    Raises:
        PolicyError: unreadable or invalid, every error with its line.
    """
    file = Path(path) if path is not None else default_policy_path()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise PolicyError([LoadError(str(file), 0, 0, f"cannot read: {reason}")]) from None
    return parse_policy(text, str(file))
