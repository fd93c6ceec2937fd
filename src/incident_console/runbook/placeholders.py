"""Placeholders in runbooks people write, turned into runbook variables by meaning.

`<service>` and `<service_name>` are the `service` variable, `<container>`, `<container-id>`,
`<container_name>` and `backend-<id>` the `container`; anything else (`<deployment-name>`,
`<long-id>`, `<port>`) becomes its own variable that `--set` must fill. A placeholder is
replaced where it stands, inside its token (`/sys/fs/cgroup/cpu/docker/<long-id>/cpu.stat`,
`--filter 'container=<service_name>'`), never the whole token. `$CONTAINER`-style shell
variables that the snippet itself never sets are read the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from incident_console.domain.command_rules import word_set
from incident_console.runbook.schema import BUILTIN_VARIABLES, TEMPLATE_KEYWORDS

_SERVICE = frozenset(("service", "service_name", "servicename", "svc", "compose_service"))
_CONTAINER = frozenset(
    (
        "container",
        "container_id",
        "container_name",
        "containername",
        "containerid",
        "cid",
        "container_name_or_id",
        "container_or_id",
    )  # fmt: skip
)
#: `backend-<id>`: a name with the instance part left out is the service's container.
_INSTANCE = re.compile(r"(?<![\w./-])[A-Za-z][\w.]*[-_]<(?:id|n|number|hash|container-id)>")
_ANGLE = re.compile(r"<([A-Za-z][\w.:-]*)>")
_SHELL_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
#: The environment every shell has: never placeholders.
_ENVIRONMENT = word_set(
    "HOME PATH USER LOGNAME PWD OLDPWD SHELL HOSTNAME TERM LANG LC_ALL TMPDIR UID EUID PPID "
    "RANDOM SECONDS LINENO IFS PS1 PS2 EDITOR PAGER DISPLAY SSH_CLIENT SSH_CONNECTION BASH "
    "DOCKER_HOST KUBECONFIG"
)

Declare = Callable[[str, str], str]


def variable_name(placeholder: str) -> str:
    """`<Deployment-Name>` -> `deployment_name`; the built-in by meaning where there is one."""
    name = re.sub(r"[^a-z0-9]+", "_", placeholder.lower()).strip("_") or "value"
    if name in _SERVICE:
        return "service"
    if name in _CONTAINER:
        return "container"
    if name[0].isdigit():
        name = f"v_{name}"
    if name in TEMPLATE_KEYWORDS:
        name = f"{name}_value"
    return name


def is_builtin(name: str) -> bool:
    """A variable the console discovers itself (no `--set` needed to declare it)."""
    return name in BUILTIN_VARIABLES


def replace_angles(text: str, declare: Declare) -> str:
    """Every `<placeholder>` in `text` as a ``{{variable}}``; `declare(name, placeholder)` is
    told of each and returns the name to use."""
    text = _INSTANCE.sub(lambda m: "{{" + declare("container", m.group(0)) + "}}", text)
    return _ANGLE.sub(lambda m: "{{" + declare(variable_name(m.group(1)), m.group(0)) + "}}", text)


def assigned_names(text: str) -> set[str]:
    """Shell variables a snippet sets itself (`X=...`, `read X`, `for X in`)."""
    names = set(re.findall(r"(?:^|[\s;&|(])([A-Za-z_][A-Za-z0-9_]*)=", text))
    names |= set(re.findall(r"\b(?:read(?:\s+-\w+)*|for)\s+([A-Za-z_][A-Za-z0-9_]*)", text))
    return names


def replace_shell_variables(text: str, declare: Declare, assigned: set[str]) -> str:
    """`$CONTAINER` / `${POD_NAME}` outside single quotes, not set by the snippet itself and
    not the shell's own environment, as runbook variables (`{{container}}`, `{{pod_name}}`)."""
    out: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and quote != "'":
            out.append(text[i : i + 2])
            i += 2
            continue
        if char in "'\"" and quote in ("", char):
            quote = "" if quote else char
        if char == "$" and quote != "'":
            match = _SHELL_VAR.match(text, i)
            name = (match.group(1) or match.group(2)) if match else ""
            if (
                match
                and name.isupper()
                and len(name) > 1
                and name not in _ENVIRONMENT
                and name not in assigned
            ):
                out.append("{{" + declare(variable_name(name), match.group(0)) + "}}")
                i = match.end()
                continue
        out.append(char)
        i += 1
    return "".join(out)
