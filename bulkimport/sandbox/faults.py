"""What the sandbox does wrong on purpose: the ``--faults`` spec and the dice.

Rates run from 0 to 1, per subscription request. :class:`Faults` holds them
(:meth:`Faults.parse` reads ``"429=0.1,reset=0.05"``); :class:`FaultDice`
throws one seeded draw per request, so a rehearsal repeats for a given seed.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import Enum
from types import MappingProxyType

from bulkimport.errors import InputError

_FAULT_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "429": "rate_429",
        "503": "rate_503",
        "500": "rate_500",
        "reset": "rate_reset",
        "slow": "rate_slow",
        "shuffle": "rate_shuffle",
        "slow_seconds": "slow_seconds",
        "retry_after": "retry_after",
        "nodata": "rate_nodata",
        "trickle": "rate_trickle",
        "trickle_ms": "trickle_ms",
    }
)
# A request suffers at most one of these; shuffling combines with any answer of contacts.
_EXCLUSIVE_RATES = (
    "rate_429",
    "rate_503",
    "rate_500",
    "rate_reset",
    "rate_slow",
    "rate_nodata",
    "rate_trickle",
)


@dataclass(frozen=True)
class Faults:
    """How often the sandbox misbehaves, per subscription request (rates from 0 to 1)."""

    rate_429: float = 0.0
    rate_503: float = 0.0
    rate_500: float = 0.0
    rate_reset: float = 0.0
    rate_slow: float = 0.0
    slow_seconds: float = 2.0
    rate_shuffle: float = 0.0
    retry_after: float = 1.0
    rate_nodata: float = 0.0
    rate_trickle: float = 0.0
    trickle_ms: float = 1000.0

    def __post_init__(self) -> None:
        for name in (f.name for f in fields(self)):
            value = getattr(self, name)
            _check_fault_value(name, value, f"{name}={value}")
        total = sum(getattr(self, name) for name in _EXCLUSIVE_RATES)
        if total > 1 + 1e-9:
            raise InputError(
                "The fault rates for 429, 503, 500, reset, slow, nodata and trickle add up "
                f"to {total:g}; lower them so that together they are at most 1."
            )

    @classmethod
    def parse(cls, spec: str) -> Faults:
        """Return the faults a spec like ``"429=0.1,reset=0.05,retry_after=0"`` asks for."""
        values: dict[str, float] = {}
        for part in (piece.strip() for piece in spec.split(",")):
            if not part:
                continue
            name, value = _parse_fault(part)
            if name in values:
                raise InputError(f'Fault "{part}" is given twice; keep only one of them.')
            values[name] = value
        return cls(**values)

    def spec(self) -> str:
        """Return these faults as a spec :meth:`parse` reads back ("" for none)."""
        default = Faults()
        parts = [
            f"{short}={getattr(self, name):g}"
            for short, name in _FAULT_NAMES.items()
            if getattr(self, name) != getattr(default, name)
        ]
        return ",".join(parts)


def _parse_fault(part: str) -> tuple[str, float]:
    """Return the field name and value of one ``NAME=VALUE`` part of a fault spec."""
    short, sep, raw = part.partition("=")
    name = _FAULT_NAMES.get(short.strip(), short.strip())
    if not sep or name not in _FAULT_NAMES.values():
        raise InputError(
            f'Fault "{part}" is not understood; write NAME=VALUE with NAME one of '
            f"{', '.join(_FAULT_NAMES)}."
        )
    try:
        value = float(raw)
    except ValueError as err:
        raise InputError(f'Fault "{part}" needs a number after "="; write e.g. "429=0.1".') from err
    _check_fault_value(name, value, part)
    return name, value


def _check_fault_value(name: str, value: float, part: str) -> None:
    """Refuse a rate outside 0..1 or a negative or infinite duration."""
    if name.startswith("rate_"):
        if not 0 <= value <= 1:
            raise InputError(f'Fault "{part}" is a rate; give a number from 0 to 1.')
    elif not (math.isfinite(value) and value >= 0):
        unit = "milliseconds" if name.endswith("_ms") else "seconds"
        raise InputError(f'Fault "{part}" is in {unit}; give a number of 0 or more.')


NO_FAULTS = Faults()


class Fault(Enum):
    """What goes wrong with one subscription request."""

    NONE = "none"
    TOO_MANY_REQUESTS = "429"
    UNAVAILABLE = "503"
    SERVER_ERROR = "500"
    RESET = "reset"
    SLOW = "slow"
    NO_DATA = "nodata"
    TRICKLE = "trickle"


class NoDataShape(Enum):
    """How a ``nodata`` answer leaves out ``{"data": [...]}``."""

    BARE_LIST = "201 with a bare list"
    HTML = "200 with an HTML page"
    EMPTY = "204 without a body"


@dataclass(frozen=True)
class FaultDraw:
    """The dice thrown for one request, with the settings in force when thrown."""

    fault: Fault
    retry_after: float
    retry_after_as_date: bool
    send_retry_after: bool
    slow_seconds: float
    shuffle_seed: int | None
    no_data_shape: NoDataShape
    trickle_seconds: float


class FaultDice:
    """Draws faults from one seeded generator, so a run is repeatable for a given seed."""

    def __init__(self, faults: Faults, seed: int) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._faults = faults

    @property
    def faults(self) -> Faults:
        """Return the faults in force."""
        return self._faults

    def set(self, faults: Faults) -> None:
        """Use other faults from the next request on."""
        self._faults = faults

    def draw(self) -> FaultDraw:
        """Return what goes wrong with the next request."""
        with self._lock:
            faults = self._faults
            # Always four numbers per request, so the sequence does not depend on the rates.
            pick, form, shuffle, shuffle_seed = (
                self._rng.random(),
                self._rng.random(),
                self._rng.random(),
                self._rng.getrandbits(32),
            )
        return FaultDraw(
            fault=_pick_fault(faults, pick),
            retry_after=faults.retry_after,
            retry_after_as_date=form < 0.5,
            send_retry_after=form < 0.5 or form >= 0.75,
            slow_seconds=faults.slow_seconds,
            shuffle_seed=shuffle_seed if shuffle < faults.rate_shuffle else None,
            # The same number as the Retry-After form: no fault uses both.
            no_data_shape=_NO_DATA_SHAPES[min(int(form * 3), 2)],
            trickle_seconds=faults.trickle_ms / 1000,
        )


_NO_DATA_SHAPES = (NoDataShape.BARE_LIST, NoDataShape.HTML, NoDataShape.EMPTY)


def _pick_fault(faults: Faults, pick: float) -> Fault:
    """Return the fault whose slice of 0..1 holds ``pick``."""
    threshold = 0.0
    for fault, rate in (
        (Fault.TOO_MANY_REQUESTS, faults.rate_429),
        (Fault.UNAVAILABLE, faults.rate_503),
        (Fault.SERVER_ERROR, faults.rate_500),
        (Fault.RESET, faults.rate_reset),
        (Fault.SLOW, faults.rate_slow),
        (Fault.NO_DATA, faults.rate_nodata),
        (Fault.TRICKLE, faults.rate_trickle),
    ):
        threshold += rate
        if pick < threshold:
            return fault
    return Fault.NONE
