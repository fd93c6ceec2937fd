"""The walkthrough's variables: asked for, set in a form, found later, never shown empty.

Pilot tests of the built-in runbook on a RecordingMonitor whose state holds two compose projects
with a `backend` each (both OOM-killed), and a fake executor that journals.
"""

from __future__ import annotations

from textual.app import App
from textual.widgets import Input, OptionList, Static

from incident_console.domain.events import ContainerInfo, OomConstraint, OomKill
from incident_console.runbook.loader import load_runbook
from incident_console.ui.demo import RecordingMonitor
from incident_console.ui.screens.runbook import RunbookScreen
from test_runbook_engine import Clock, FakeExecutor

SIZE = (150, 45)
MIB = 1024 * 1024
SHOP, OTHER = "b" * 64, "a" * 64


class Host(App[None]):
    def __init__(self, screen: RunbookScreen) -> None:
        super().__init__()
        self.rb = screen

    def on_mount(self) -> None:
        self.push_screen(self.rb)


def _info(cid: str, project: str, service: str = "backend") -> ContainerInfo:
    return ContainerInfo(
        time=1.0,
        id=cid,
        name=f"{project}_{service}_1",
        state="running",
        project=project,
        service=service,
        working_dir=f"/srv/{project}",
        config_files=("docker-compose.yml",),
        memory_limit_bytes=256 * MIB,
    )


def _kill(cid: str, when: float) -> OomKill:
    return OomKill(time=when, pid=7, process="gunicorn", constraint=OomConstraint.LIMIT,
                   anon_rss_bytes=120 * MIB, container_id=cid, service="backend")  # fmt: skip


def two_stacks() -> RecordingMonitor:
    monitor = RecordingMonitor("prod")
    monitor.post(_info(SHOP, "shop"))
    monitor.post(_info(OTHER, "other"))
    for i in range(3):
        monitor.post(_kill(SHOP, 10.0 + i))
    monitor.post(_kill(OTHER, 20.0))
    return monitor


def _text(screen: RunbookScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_two_projects_are_asked_for_the_selected_ones_first() -> None:
    from incident_console.ui.screens.variables_form import ProjectChoice

    executor = FakeExecutor(Clock())
    screen = RunbookScreen(two_stacks(), "oom-after-deploy", executor=executor, selected=OTHER)
    app = Host(screen)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        assert isinstance(app.screen, ProjectChoice)  # nothing was picked silently
        options = app.screen.query_one("#pc-list", OptionList)
        first = str(options.get_option_at_index(0).prompt)
        assert first.startswith("other") and "selected container's project" in first
        assert "shop" in str(options.get_option_at_index(1).prompt)  # more kills, still second
        await pilot.press("enter")
        await pilot.pause(0.2)
        v = screen.engine.variables
        assert v["project"] == "other" and v["container"] == "other_backend_1"
        assert v["compose_file"] == "/srv/other/docker-compose.yml"
        assert {"kind": "runbook_variables", "runbook": "oom-after-deploy",
                "set": {"project": "other"}, "how": "chosen in the walkthrough"} in executor.journaled  # fmt: skip
        screen.engine.cursor = screen.engine.index("gunicorn-settings")
        screen._show()
        await pilot.pause()
        assert "project other on prod" in _text(screen, "#rb-step-title")


async def test_the_form_sets_a_missing_variable_prefilled_with_what_was_seen() -> None:
    from incident_console.ui.screens.variables_form import VariablesForm

    executor = FakeExecutor(Clock())
    screen = RunbookScreen(two_stacks(), "oom-after-deploy", executor=executor, selected=SHOP)
    app = Host(screen)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        await pilot.press("escape")  # not now: the question comes back as a field of the form
        await pilot.pause(0.1)
        screen.engine.cursor = screen.engine.index("service-logs")
        screen._show()
        await pilot.pause()
        title = _text(screen, "#rb-step-title")
        assert "needs container: press v to set" in title
        assert "backend runs in 2 compose projects" in title  # why it is unknown
        assert "no compose labels seen" not in _text(screen, "#rb-action")
        await pilot.press("v")
        await pilot.pause(0.2)
        form = app.screen
        assert isinstance(form, VariablesForm)
        assert [f.name for f in form.fields if f.missing] == ["project", "container"]
        assert form.query_one("#vf-project", Input).value == "shop"  # the selected's, first
        # Never another project's container: it is found once the project is chosen.
        assert form.query_one("#vf-container", Input).value == ""
        await pilot.press("enter")
        await pilot.pause(0.2)
        v = screen.engine.variables
        assert v["project"] == "shop" and v["container"] == "shop_backend_1"
        assert v["compose_file"] == "/srv/shop/docker-compose.yml"
        assert screen.engine.refusal(screen.cursor) == ""
        assert any(r.get("set", {}).get("project") == "shop" for r in executor.journaled)
        await pilot.press("v")
        await pilot.pause(0.2)
        form = app.screen
        assert isinstance(form, VariablesForm)
        form.query_one("#vf-other", Input).value = "watch=soon"
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert isinstance(app.screen, VariablesForm)  # a bad value is said, not applied
        assert "watch" in str(app.screen.query_one("#vf-error", Static).render())
        form.query_one("#vf-other", Input).value = "watch=90s"
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert screen.engine.variables["watch"] == "90s"


async def test_unknown_values_are_said_and_found_once_the_inventory_comes() -> None:
    monitor = RecordingMonitor("prod")
    screen = RunbookScreen(monitor, "oom-after-deploy", executor=FakeExecutor(Clock()))
    async with Host(screen).run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        screen.engine.cursor = screen.engine.index("gunicorn-settings")
        screen._show()
        await pilot.pause()
        why = _text(screen, "#rb-why")
        assert "()" not in why and "measured peak (unknown)" in why
        assert "unknown workers fit the limit" in why
        assert screen.engine.variables["container"] == ""
        monitor.post(_info(SHOP, "shop"))  # the inventory arrives after the screen opened
        await pilot.pause(2.6)
        assert screen.engine.variables["container"] == "shop_backend_1"
        assert screen.engine.variables["compose_file"] == "/srv/shop/docker-compose.yml"
        # Its access lines are the requests the growth is measured over: they are followed.
        assert any(SHOP in (ids or ()) for ids in monitor.followed)


def test_the_builtin_remediation_needs_its_proposal() -> None:
    runbook = load_runbook("oom-after-deploy")
    assert {"workers", "max_requests", "max_requests_jitter"} <= set(
        runbook.step("gunicorn-settings").requires
    )
    assert "mem_limit" in runbook.step("memory-limit").requires
    assert "container" in runbook.step("containers").requires
