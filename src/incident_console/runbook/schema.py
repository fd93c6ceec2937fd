"""The runbook format: pydantic models of a YAML runbook.

A runbook is a list of steps. A step has an id, a title, a kind (diagnose, remediate, verify),
a `why`, exactly one action (run, compose_set, recreate, restart, wait, manual) and checks that
decide pass/fail. Strings may name variables as ``{{name}}``: the double braces keep compose's
own ``${VAR:-default}`` syntax usable in values the runbook writes into a compose file, and
docker's own Go templates (``{{.State.OOMKilled}}``, ``{{range .Mounts}}...{{end}}``, ``{{json
.}}``) are not variables: they never name an identifier alone, except the template keywords,
which are left out.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from incident_console.domain.commands import CommandClass, classify_argv, classify_shell

#: Go template words that stand alone in braces (``{{end}}``, ``{{else}}``): never variables.
TEMPLATE_KEYWORDS = frozenset(("end", "else", "break", "continue", "nil", "true", "false"))
#: ``{{ name }}``: a variable reference inside any string of a runbook.
VARIABLE_REF = re.compile(
    r"\{\{\s*(?!(?:"
    + "|".join(sorted(TEMPLATE_KEYWORDS))
    + r")\s*\}\})([A-Za-z_][A-Za-z0-9_]*)\s*\}\}"
)

#: Variables every runbook may use without declaring them (variables.py fills them in).
BUILTIN_VARIABLES: dict[str, str] = {
    "host": "the host's name as the console knows it",
    "service": "the compose service under investigation (the one with OOM kills, else backend)",
    "container": "the name of the service's (first) container",
    "project": "the compose project (label com.docker.compose.project)",
    "compose_file": "the compose file that holds the service's settings (of config_files)",
    "compose_files": "every compose file of the project, in order (label config_files)",
    "env_file": "the project's env file (label com.docker.compose.project.environment_file)",
    "project_dir": "the compose working directory (label com.docker.compose.project.working_dir)",
    "health_url": "the URL that must answer 200 (the first probe the console was given)",
    "watch": "how long the verify window lasts (the seed watches 30 minutes)",
    "workers": "gunicorn workers to run, from the measured per-worker peak RSS",
    "max_requests": "gunicorn --max-requests (recycle workers before they grow too big)",
    "max_requests_jitter": "gunicorn --max-requests-jitter",
    "mem_limit": "the service's memory limit, from measured RSS",
    "mem_reservation": "the service's memory reservation",
    "memory_target": "what the service's memory must stay below in the verify window",
    "current_workers": "the worker processes seen in the service's container now",
    "worker_peak": "the measured per-worker peak RSS",
    "server_memory": "with no limit anywhere: what the server has left for the service",
    "other_limits": "limits for the other containers of the group, from what they used",
}

ACTIONS = ("run", "compose_set", "recreate", "restart", "wait", "manual")
CHECKS = (
    "exit_status",
    "output_matches",
    "no_new_oom",
    "oom_recorded",
    "memory_below",
    "http_status",
    "limit_in_effect",
    "workers_recycled",
)

_Strict = ConfigDict(extra="forbid", str_strip_whitespace=False)


class _Model(BaseModel):
    model_config = _Strict


class ServiceRef(_Model):
    """A check or action aimed at a compose service (default: the `service` variable)."""

    service: str = "{{service}}"


class MemoryBelow(_Model):
    """The service's memory stays below `limit` for `for_` (YAML key `for`)."""

    service: str = "{{service}}"
    limit: str
    for_: str = Field(default="30s", alias="for")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class HttpStatus(_Model):
    """`url` answers `status` `times` times in a row, one try every `interval`."""

    url: str = "{{health_url}}"
    status: int = 200
    times: int = Field(default=3, ge=1, le=1000)
    interval: str = "2s"


class Check(_Model):
    """One automatic check; exactly one key is set."""

    exit_status: int | None = None
    output_matches: str | None = None
    no_new_oom: ServiceRef | None = None
    #: The console holds OOM kill records of the service ('' = any container of the project),
    #: from whichever source the user may read: the kernel log, the cgroups' counters, docker.
    oom_recorded: ServiceRef | None = None
    memory_below: MemoryBelow | None = None
    http_status: HttpStatus | None = None
    limit_in_effect: ServiceRef | None = None
    workers_recycled: ServiceRef | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data: Any) -> Any:
        # `no_new_oom: true` and friends read better than `no_new_oom: {}`.
        if isinstance(data, dict):
            data = dict(data)
            for key in ("no_new_oom", "oom_recorded", "limit_in_effect", "workers_recycled",
                        "http_status"):  # fmt: skip
                if data.get(key) is True:
                    data[key] = {}
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> Check:
        chosen = [name for name in CHECKS if getattr(self, name) is not None]
        if len(chosen) != 1:
            raise ValueError(f"a check needs exactly one of: {', '.join(CHECKS)}")
        return self

    @property
    def name(self) -> str:
        return next(n for n in CHECKS if getattr(self, n) is not None)

    @field_validator("output_matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            if not value.strip():
                raise ValueError("an empty pattern matches any output: the check could not fail")
            # Each {{variable}} stands for a non-empty literal (checks escape the value).
            probe = VARIABLE_REF.sub("x", value)
            try:
                compiled = re.compile(probe)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
            if compiled.search("") is not None:
                raise ValueError(
                    f"{value!r} matches the empty string, so it matches any output: "
                    "the check could not fail"
                )
        return value


class ComposeSet(_Model):
    """A round-trip edit of a service in the compose file on the server."""

    service: str = "{{service}}"
    file: str = "{{compose_file}}"
    environment: dict[str, str] = Field(default_factory=dict)
    memory_limit: str | None = None
    memory_reservation: str | None = None
    #: Where the limit goes: `auto` follows what the file already uses and its version.
    memory_key: Literal["auto", "mem_limit", "deploy"] = "auto"
    #: Command-line options to set in the service's `command:` (`--workers: 2`).
    command_args: dict[str, str] = Field(default_factory=dict)

    @field_validator("environment", "command_args", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        # YAML reads `GUNICORN_WORKERS: 2` as an int; compose wants strings anyway.
        if isinstance(value, dict):
            return {k: (str(v) if isinstance(v, int | float) else v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _something(self) -> ComposeSet:
        if not (
            self.environment or self.memory_limit or self.memory_reservation or self.command_args
        ):
            raise ValueError(
                "compose_set changes nothing: give environment, memory_limit, "
                "memory_reservation or command_args"
            )
        return self


class Step(_Model):
    """One step of a runbook."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    title: str
    kind: Literal["diagnose", "remediate", "verify"]
    why: str = ""
    section: str = ""
    #: Variables that must be known before the step can run (e.g. compose_file).
    requires: list[str] = Field(default_factory=list)
    run: str | list[str] | None = None
    timeout: str = "60s"
    compose_set: ComposeSet | None = None
    recreate: ServiceRef | None = None
    restart: ServiceRef | None = None
    wait: str | None = None
    manual: str | None = None
    checks: list[Check] = Field(default_factory=list)
    #: How long checks that need time (k answers in a row) may take after a non-wait action.
    settle: str = "2m"

    @field_validator("recreate", "restart", mode="before")
    @classmethod
    def _service_shorthand(cls, value: Any) -> Any:
        if value is True:
            return {}
        if isinstance(value, str):
            return {"service": value}
        return value

    @field_validator("run")
    @classmethod
    def _nonempty(cls, value: str | list[str] | None) -> str | list[str] | None:
        if value is not None and not value:
            raise ValueError("run needs a command")
        return value

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        chosen = [name for name in ACTIONS if getattr(self, name) is not None]
        if len(chosen) != 1:
            raise ValueError(f"a step needs exactly one action of: {', '.join(ACTIONS)}")
        return self

    @property
    def action(self) -> str:
        return next(n for n in ACTIONS if getattr(self, n) is not None)

    @property
    def command_class(self) -> CommandClass | None:
        """What the classifier says of a `run` step's command (None for other actions).

        The command as written, variables unfilled: a ``{{name}}`` is one literal word here,
        as it is one quoted parameter when the snippet runs.
        """
        if self.run is None:
            return None
        if isinstance(self.run, list):
            return classify_argv(self.run)
        return classify_shell(self.run)

    @property
    def mutates(self) -> bool:
        """True when the step changes the server (read-only mode disables it): a remediate
        step, a compose edit, a recreate or restart, and a `run` step whose command the
        classifier does not know to be read-only, whatever its kind."""
        if self.kind == "remediate" or self.action in ("compose_set", "recreate", "restart"):
            return True
        found = self.command_class
        return found is not None and found.changes


class VariableDecl(_Model):
    """A runbook-declared variable (or a new default for a built-in one)."""

    default: str | None = None
    why: str = ""

    @field_validator("default", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value


class Runbook(_Model):
    """A whole runbook."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    title: str
    description: str = ""
    variables: dict[str, VariableDecl] = Field(default_factory=dict)
    requires: list[str] = Field(default_factory=list)
    steps: list[Step] = Field(min_length=1)
    #: What to try if the problem persists (the report lists them).
    followups: list[str] = Field(default_factory=list)

    def step(self, step_id: str) -> Step:
        """The step with this id (KeyError when none)."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    @property
    def known_variables(self) -> set[str]:
        return set(BUILTIN_VARIABLES) | set(self.variables)


def render(template: str, variables: dict[str, str]) -> str:
    """Replace every ``{{name}}`` in `template` (unknown names raise KeyError)."""
    return VARIABLE_REF.sub(lambda m: str(variables[m.group(1)]), template)


#: $0 of a runbook's shell snippet (what `sh -c` names the script in its error messages).
SNIPPET_NAME = "runbook-step"


def snippet_argv(template: str, variables: dict[str, str]) -> list[str]:
    """`sh -c SNIPPET runbook-step VALUE...`: a shell snippet with its variables as parameters.

    Variable values (service and container names, compose paths read from labels on the
    server, `--set` values) never become shell text: each ``{{name}}`` turns into a quoted
    positional parameter (``"${1}"``) and the value travels as its own argv element. The
    reference is rewritten for the quoting context it sits in, so ``'{{x}}'``, ``"{{x}}"`` and
    a bare ``{{x}}`` all expand to exactly the value, one word, no globbing.

    Raises:
        KeyError: a variable is not known.
    """
    index: dict[str, int] = {}
    values: list[str] = []
    out: list[str] = []
    quote = ""  # '', "'" or '"': the quoting context at the current position
    i = 0
    while i < len(template):
        ref = VARIABLE_REF.match(template, i)
        if ref is not None:
            name = ref.group(1)
            if name not in index:
                values.append(str(variables[name]))
                index[name] = len(values)
            param = f"${{{index[name]}}}"
            if quote == '"':
                out.append(param)
            elif quote == "'":
                out.append(f"'\"{param}\"'")  # leave the single quotes, expand, re-enter
            else:
                out.append(f'"{param}"')
            i = ref.end()
            continue
        char = template[i]
        if char == "\\" and quote != "'" and i + 1 < len(template):
            out.append(template[i : i + 2])
            i += 2
            continue
        if char in "'\"" and quote in ("", char):
            quote = "" if quote else char
        out.append(char)
        i += 1
    return ["sh", "-c", "".join(out), SNIPPET_NAME, *values]
