"""A text field that keeps the order of the keys typed into it.

Textual 8.2.8's `Input` inserts a printable key at once but runs its bound keys (home, ctrl+k,
enter) only after they have travelled up to the app and back. When keys arrive in one batch (a
console on a loaded server, measured here: keys 2 s late and then all at once), "Home ctrl+k
60s Enter" came out as "60s" typed, then erased by ctrl+k, then an empty value submitted: the
walkthrough's form said "invalid duration ''" for a value the engineer had typed. Textual issue
#6605; the shape of the fix is its PR #6631. Drop this once the pinned Textual has the fix.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class OrderedInput(Input):
    """An `Input` whose own (non-priority) bindings run in the order the keys came."""

    async def _on_key(self, event: events.Key) -> None:
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            if not binding.priority:
                event.stop()
                event.prevent_default()
                await self.run_action(binding.action)
                return
        await super()._on_key(event)
