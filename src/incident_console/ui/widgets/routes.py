"""The container detail's routes table: what each route keeps per request, worst first."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from incident_console.domain.leak import LeakReport
from incident_console.ui import format as fmt

__all__ = ["RoutesTable", "routes_title"]

#: Rows shown at most (the rest are counted in the title).
MAX_ROWS = 30


def routes_title(report: LeakReport | None) -> str:
    """The table's border title: what the estimate says in one line."""
    if report is None:
        return "Routes: no requests seen yet"
    if report.worst is not None:
        worst = report.worst
        return (
            f"Routes: likely leak {fmt.clean(worst.route)} "
            f"~{fmt.size(round(worst.bytes_per_request))}/req, fit {report.r2:.2f}"
        )
    if report.status == "none":
        return f"Routes: none keeps memory measurably (fit {report.r2:.2f})"
    return f"Routes: not enough data: {fmt.clean(report.reason)}"


class RoutesTable(DataTable[Text]):
    """Requests, KiB per request (with its error) and share of the growth, per route."""

    DEFAULT_CSS = """
    RoutesTable { height: 1fr; border: round $secondary; }
    RoutesTable > .datatable--header { text-style: bold; }
    """

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns("route", "reqs", "KiB/req", "±", "share")
        self.show(None)

    def show(self, report: LeakReport | None) -> None:
        """Fill the table from `report` (None: nothing estimated for this container)."""
        self.clear()
        self.border_title = routes_title(report)
        if report is None:
            return
        fmt_name = report.log_format or "?"
        self.border_subtitle = fmt.clean(f"{fmt_name}; per {report.units or '-'}")
        for est in report.routes[:MAX_ROWS]:
            # Bold: named as keeping memory; dim: the fit found nothing for it.
            style = "bold" if est.named else ("" if est.bytes_per_request >= 1024 else "dim")
            mark = "! " if est.named else "  "
            self.add_row(
                Text(mark + fmt.clean(est.route), style=style),
                Text(str(est.requests), justify="right", style=style),
                Text(f"{est.bytes_per_request / 1024:.0f}", justify="right", style=style),
                Text(f"{est.stderr_bytes / 1024:.0f}", justify="right", style=style),
                Text(f"{est.share:.0%}", justify="right", style=style),
            )
        hidden = len(report.routes) - MAX_ROWS
        if hidden > 0:
            self.border_subtitle += f"; {hidden} more routes"
