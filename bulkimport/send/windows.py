"""Send windows: whether a person may be messaged now, in their own time, and when they may.

The window (``08:00-20:00``, or ``20:00-06:00`` across midnight) is read in
the recipient's local time. Their zones come from the number
(``phonenumbers.timezone``); a number with several possible zones is inside
the window only when it is inside in every one of them. A row whose number
tells no zone, or that names an existing contact by id, uses the fallback
zone (``--timezone``, else this machine's); ``--timezone-for-all`` reads the
window in one zone for everyone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import time as clock_time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from bulkimport.contacts import Field, is_existing_contact
from bulkimport.settings import SendSettings, parse_send_window

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]  # an aware "now"; tests inject their own
Zones = tuple[str, ...]

LOCAL = "local time"  # the fallback zone's name when no --timezone is given
_UNKNOWN_ZONE = "Etc/Unknown"  # what phonenumbers answers for a number without a zone
_SEARCH_DAYS = 3  # how far ahead an opening is looked for


def utc_now() -> datetime:
    """Return the current time, aware (the default clock)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Opening:
    """When a closed window opens next: the moment, and how a person reads it."""

    at: datetime | None  # None: no moment is inside the window in every possible zone
    zone: str

    def describe(self) -> str:
        """Return e.g. ``08:00 Asia/Manila`` (the local time the window opens)."""
        if self.at is None:
            return f"never inside the window in all of {self.zone}"
        local = self.at.astimezone(_zone(self.zone))
        return f"{local:%H:%M} {self.zone}"

    def reason(self) -> str:
        """Return the reason a waiting row carries in the ledger."""
        if self.at is None:
            return (
                f"waits for the send window, which is {self.describe()}: "
                "use --timezone-for-all to read it in one zone"
            )
        return f"waits for the send window (opens {self.describe()})"


class SendWindow:
    """One window read in each row's zones: open now or not, and the next opening."""

    def __init__(
        self,
        opens: clock_time,
        closes: clock_time,
        *,
        fallback: str | None = None,
        for_all: str | None = None,
    ) -> None:
        self.opens = opens
        self.closes = closes
        self.fallback = fallback or LOCAL
        self.for_all = for_all

    @classmethod
    def from_settings(cls, settings: SendSettings) -> SendWindow | None:
        """Return the window the settings ask for, or None when any hour will do."""
        if settings.send_window is None:
            return None
        parsed = parse_send_window(settings.send_window)
        if parsed is None:
            return None
        return cls(*parsed, fallback=settings.timezone, for_all=settings.timezone_for_all)

    def describe(self) -> str:
        """Return e.g. ``08:00-20:00 in each person's time (else Asia/Manila)``."""
        hours = f"{self.opens:%H:%M}-{self.closes:%H:%M}"
        if self.for_all:
            return f"{hours} {self.for_all} for everyone"
        return f"{hours} in each person's time (else {self.fallback})"

    def zones_of(self, payload: Mapping[str, Any]) -> Zones:
        """Return the zones a contact may be in."""
        if self.for_all:
            return (self.for_all,)
        if is_existing_contact(payload):
            return (self.fallback,)
        return _zones_of_number(str(payload.get(Field.PHONE.value, "")), self.fallback)

    def is_open(self, zones: Zones, now: datetime) -> bool:
        """Return whether ``now`` is inside the window in every one of ``zones``."""
        return all(self._inside(now.astimezone(_zone(zone)).time()) for zone in zones)

    def next_opening(self, zones: Zones, now: datetime) -> Opening:
        """Return the first moment after ``now`` that is inside the window in every zone."""
        candidates: list[tuple[datetime, str]] = []
        for zone in zones:
            here = _zone(zone)
            today = now.astimezone(here).date()
            for day in range(-1, _SEARCH_DAYS + 1):
                local = datetime.combine(today + timedelta(days=day), self.opens, here)
                moment = local.astimezone(UTC)
                if moment > now:
                    candidates.append((moment, zone))
        for moment, zone in sorted(candidates):
            if self.is_open(zones, moment):
                return Opening(moment, zone)
        return Opening(None, ", ".join(zones))

    def _inside(self, local: clock_time) -> bool:
        if self.opens < self.closes:
            return self.opens <= local < self.closes
        return local >= self.opens or local < self.closes  # wraps midnight


@lru_cache(maxsize=4096)
def _zones_of_number(phone: str, fallback: str) -> Zones:
    import phonenumbers
    from phonenumbers import timezone as number_zones

    try:
        number = phonenumbers.parse("+" + phone.lstrip("+"))
    except phonenumbers.NumberParseException:
        return (fallback,)
    zones = tuple(z for z in number_zones.time_zones_for_number(number) if z != _UNKNOWN_ZONE)
    return zones or (fallback,)


@lru_cache(maxsize=256)
def _zone(name: str) -> tzinfo:
    if name == LOCAL:
        found = datetime.now().astimezone().tzinfo
        assert found is not None
        return found
    return ZoneInfo(name)
