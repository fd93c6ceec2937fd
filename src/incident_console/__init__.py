"""incident-console: a console for the on-call engineer of a docker-compose server out of memory."""

from __future__ import annotations

__version__ = "0.1.0"
