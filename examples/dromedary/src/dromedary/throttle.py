"""The per-IP request throttle: after an increment, that IP waits ``WINDOW_SECONDS``.

The entries are plain data (IP -> expiry, in seconds since the epoch) so they can be stored with
the counts and shared by every container of the function, not kept per container as in the
original app.
"""

from __future__ import annotations

WINDOW_SECONDS = 0.1


class RequestThrottle:
    def __init__(
        self, entries: dict[str, float] | None = None, window: float = WINDOW_SECONDS
    ) -> None:
        self.entries: dict[str, float] = entries if entries is not None else {}
        self.window = window

    def check(self, ip: str, now: float) -> bool:
        """True when ``ip`` is still inside its window (and must be refused)."""
        expiry = self.entries.get(ip)
        return expiry is not None and now < expiry

    def log(self, ip: str, now: float) -> None:
        """Start ``ip``'s window at ``now``."""
        self.entries[ip] = now + self.window

    def gc(self, now: float) -> None:
        """Forget every IP whose window has ended."""
        for ip in [ip for ip, expiry in self.entries.items() if expiry <= now]:
            del self.entries[ip]
