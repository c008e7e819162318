"""Phone numbers as people type them, turned into the international digits the API takes.

A cell such as ``'+63 (0)917-123 4567``, ``0917 123 4567`` (with a default
country) or ``639171234567.0`` (a float from a spreadsheet) becomes
``639171234567``; anything else becomes a :class:`Rejected` whose message says
how to fix the cell. Validation is :mod:`phonenumbers`' (Google's libphonenumber
metadata); this module only tidies the text around it and decides which reading
of a number to trust.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TypeAlias

import phonenumbers
from phonenumbers import (
    NumberParseException,
    PhoneMetadata,
    PhoneNumber,
    PhoneNumberFormat,
    PhoneNumberType,
    ValidationResult,
)

from bulkimport.contacts import EXCEL_ERRORS, Problem, Rejected
from bulkimport.errors import InputError

__all__ = ["PhoneNormalizer", "PhonePolicy", "check_country"]

CACHE_SIZE = 65536
QUOTE_LIMIT = 40
# A run of this many digits can be a whole number on its own; two such runs in
# one cell that do not make one valid number are two numbers.
NUMBER_DIGITS = 7

_Reading: TypeAlias = tuple[str, str | None]  # text for phonenumbers.parse, default region

_MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})


@dataclass(frozen=True)
class PhonePolicy:
    """What the normalizer accepts: default country, possible numbers, mobiles only."""

    country: str | None = None  # ISO 3166 alpha-2, upper case, for national numbers
    allow_possible: bool = False  # accept numbers that are possible but not valid
    mobile_only: bool = False  # reject numbers that are not mobile (SMS engagements)


# Codes people write that are not ISO 3166 alpha-2 (the United Kingdom is GB).
COUNTRY_ALIASES = {"UK": "GB"}


def check_country(code: str) -> str:
    """Return ``code`` as an upper-case region phonenumbers knows, or raise InputError."""
    region = code.strip().upper()
    region = COUNTRY_ALIASES.get(region, region)
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise InputError(f"Unknown country '{code}': use a two-letter code like PH, US or KE.")
    return region


class _Prefix(Enum):
    """How a number says it is international, if it does."""

    NONE = "none"
    PLUS = "+"
    DOUBLE_ZERO = "00"


class _Cleaner(dict[int, str | None]):
    """A ``str.translate`` table that decides each code point once, on first sight.

    Every Unicode decimal digit becomes its ASCII digit, spaces become " ",
    dashes "-", line breaks "\\n", invisible format marks (zero-width, bidi, BOM,
    soft hyphen) disappear and full-width ASCII becomes ASCII. Deciding lazily
    keeps import fast while staying a plain C-level ``translate`` per cell.
    """

    def __missing__(self, code_point: int) -> str | None:
        value = _clean_char(chr(code_point))
        self[code_point] = value
        return value


_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")
_FULL_WIDTH = range(0xFF01, 0xFF5F)


def _clean_char(char: str) -> str | None:
    """Return what one character of a phone cell stands for (None: nothing)."""
    if char in _LINE_BREAKS:
        return "\n"
    digit = unicodedata.decimal(char, None)
    if digit is not None:
        return str(digit)
    if ord(char) in _FULL_WIDTH:
        return chr(ord(char) - 0xFEE0)
    category = unicodedata.category(char)
    if category == "Zs" or char == "\t":
        return " "
    if category == "Cf":
        return None
    if category == "Pd" or char == "\u2212":  # dashes, and the minus sign people type for one
        return "-"
    return char


_CLEANER = _Cleaner()
_NOT_DIGITS = b" +-.()/,"

_PLAIN = re.compile(r"\+?[0-9]+")
# RapidPro writes numbers as URNs in some exports: tel:+250788123123, whatsapp:250788123123.
_URN_SCHEME = re.compile(r"(?:tel|whatsapp):", re.IGNORECASE)
_EXCEL_TEXT = re.compile(r'="(.*)"', re.DOTALL)  # ="0917..." keeps a leading zero in CSV
_SCIENTIFIC = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]+)?[eE][+-]?[0-9]+")
_FLOAT_TAIL = re.compile(r"([0-9]+)\.0")
_BETWEEN_NUMBERS = re.compile(r"\s+(?:or|and)\s+|[;\n&|]", re.IGNORECASE)
_BETWEEN_GROUPS = re.compile(r"[/,+]")
# Digits with spaces, dashes, dots and parentheses, and at most a leading "+" or "(+".
_WRITTEN_NUMBER = re.compile(r"(?:\(?\s*\+)?[0-9 \-.()]+")
_PHONE_TEXT = re.compile(r"[0-9 +\-.()/,]+")
_PHONE_LIKE = re.compile(r"[0-9 +\-.()/,]*[0-9][0-9 +\-.()/,]*")
_LEADING_PLUS = re.compile(r"\(?\s*\+")
_TRUNK_MARK = re.compile(r"\(\s*0\s*\)")
_NUMBER_RUN = re.compile(rf"[0-9]{{{NUMBER_DIGITS},}}")


class PhoneNormalizer:
    """Turns phone cells into international digits without ``+`` under one policy.

    Results are cached by the cell's raw text, so a file full of repeated
    values costs one library round per distinct value.
    """

    def __init__(self, policy: PhonePolicy) -> None:
        self.policy = policy
        self._region = check_country(policy.country) if policy.country else None
        self._own_code = ""
        self._own_code_first = False
        if self._region:
            self._own_code = str(phonenumbers.country_code_for_region(self._region))
            metadata = PhoneMetadata.metadata_for_region(self._region)
            self._own_code_first = bool(metadata and metadata.national_prefix)
        self._cached = functools.lru_cache(maxsize=CACHE_SIZE)(self._normalize)
        self._learned: dict[str, str | Rejected] = {}

    def normalize(self, raw: str) -> str | Rejected:
        """Return the number as E.164 digits without ``+`` (``639171234567``), or why not."""
        if self._learned:
            found = self._learned.pop(raw, None)
            if found is not None:
                return found
        return self._cached(raw)

    def learn(self, raws: Sequence[str], results: Sequence[str | Rejected]) -> None:
        """Take results computed elsewhere (another process) for the next chunk of rows.

        Replaces what was learned before: those rows are done, and a row that
        never asked (rejected for another cell) must not keep its answer alive.
        """
        self._learned = dict(zip(raws, results, strict=True))

    def _normalize(self, raw: str) -> str | Rejected:
        if raw.strip() in EXCEL_ERRORS:  # a VLOOKUP that found nothing, a #DIV/0! ...
            return _formula_error(raw.strip())
        scheme = _URN_SCHEME.match(raw)
        if scheme:
            raw = raw[scheme.end() :]
        if _PLAIN.fullmatch(raw):
            plus = raw[0] == "+"
            digits = raw[1:] if plus else raw
            return self._decide(digits, _prefix_of(digits, plus=plus), raw)
        text = _tidy(raw)
        number = _one_number(text)
        if isinstance(number, Rejected):
            return number
        return self._read_number(number, text)

    def _read_number(self, number: str, shown: str) -> str | Rejected:
        """Return E.164 digits for one written number (only digits, "+", spaces, marks)."""
        plus = "+" in number
        digits = _digits_of(number)
        if "(" in number and (plus or digits.startswith("00")):
            # "+44 (0)20 ...": the national trunk 0 is not dialled from abroad.
            digits = _digits_of(_TRUNK_MARK.sub("", number))
        if not digits:
            return _missing()  # "-", "()" and the like stand for "no number"
        outcome = self._decide(digits, _prefix_of(digits, plus=plus), shown)
        # Groups that could each be a number are one number only if together they are valid.
        if (
            isinstance(outcome, Rejected)
            and outcome.code is not Problem.PHONE_NOT_MOBILE
            and len(digits) >= 2 * NUMBER_DIGITS
            and _looks_like_several(number)
        ):
            return _several(shown)
        return outcome

    def _decide(self, digits: str, prefix: _Prefix, shown: str) -> str | Rejected:
        """Read the digits as the policy says and return E.164 digits or a rejection."""
        readings, reported = self._readings(digits, prefix)
        parsed: list[PhoneNumber | NumberParseException] = []
        for text, region in readings:
            number = _parse(text, region)
            if isinstance(number, PhoneNumber) and phonenumbers.is_valid_number(number):
                return self._accept(number, shown)
            parsed.append(number)
        if reported is None:
            return Rejected(
                Problem.PHONE_NO_COUNTRY,
                f"Phone {_quote(shown)} has no country code: "
                "add the country code (like +63) or pass --country.",
            )
        first = parsed[reported]
        if isinstance(first, NumberParseException):
            return _unparsable(first, shown)
        if self.policy.allow_possible and phonenumbers.is_possible_number(first):
            return self._accept(first, shown)
        return _impossible(phonenumbers.is_possible_number_with_reason(first), shown)

    def _readings(self, digits: str, prefix: _Prefix) -> tuple[list[_Reading], int | None]:
        """Return the ways to read the digits, in order, and which one's problems to report.

        The first valid reading wins. Only the reported reading may be merely
        possible; None means no reading can stand on its own (no country at all).
        """
        region = self._region
        international: _Reading = ("+" + digits, None)
        if prefix is _Prefix.PLUS:
            return [international], 0
        if prefix is _Prefix.DOUBLE_ZERO:
            # Some countries dial abroad with more than 00 (Australia: 0011).
            abroad: list[_Reading] = [(digits, region)] if region else []
            return [("+" + digits[2:], None), *abroad], 0
        if region is None:
            return [international], None
        national: _Reading = (digits, region)
        # Exports write international numbers without "+" (639171234567). Digits that
        # start with the country's own calling code instead of its trunk prefix are
        # such an export when that reading is valid; other digits are national first.
        if self._own_code_first and digits.startswith(self._own_code):
            return [international, national], 1
        return [national, international], 0

    def _accept(self, number: PhoneNumber, shown: str) -> str | Rejected:
        if self.policy.mobile_only and phonenumbers.number_type(number) not in _MOBILE_TYPES:
            return Rejected(
                Problem.PHONE_NOT_MOBILE,
                f"Phone {_quote(shown)} is not a mobile number: "
                "use a mobile number, since this engagement is sent by SMS.",
            )
        return phonenumbers.format_number(number, PhoneNumberFormat.E164)[1:]


def _tidy(raw: str) -> str:
    """Return the cell with Unicode digits, spaces and dashes made plain, markers removed."""
    if not (raw.isascii() and raw.isprintable()):
        raw = raw.translate(_CLEANER)
    text = raw.strip()
    excel_text = _EXCEL_TEXT.fullmatch(text) if text.startswith("=") else None
    if excel_text:
        text = excel_text[1].strip()
    if text.startswith("'"):  # Excel's "store as text" marker
        text = text[1:].lstrip()
    return text


def _one_number(text: str) -> str | Rejected:
    """Return the one number a tidy cell holds, or why it does not hold exactly one."""
    if not text:
        return _missing()
    float_tail = _FLOAT_TAIL.fullmatch(text) if text.endswith(".0") else None
    if float_tail:
        return float_tail[1]
    if _WRITTEN_NUMBER.fullmatch(text):
        return text  # the common shape needs none of the checks below
    if _SCIENTIFIC.fullmatch(text):
        return Rejected(
            Problem.PHONE_SCIENTIFIC,
            f"Phone {_quote(text)} is in scientific notation and lost its last digits: "
            "format the column as Text in the original workbook and export again.",
        )
    parts = [part.strip() for part in _BETWEEN_NUMBERS.split(text)]
    numbers = [part for part in parts if part]
    if len(numbers) > 1:
        if sum(1 for part in numbers if _PHONE_LIKE.fullmatch(part)) > 1:
            return _several(text)
        return _not_a_number(text)
    number = numbers[0] if numbers else ""
    if not _PHONE_TEXT.fullmatch(number):
        return _not_a_number(text) if number else _missing()
    plus_signs = number.count("+")
    if plus_signs > 1 or (plus_signs == 1 and not _LEADING_PLUS.match(number)):
        return _several(text) if _looks_like_several(number) else _not_a_number(text)
    return number


def _digits_of(number: str) -> str:
    """Return the digits of a number already checked to hold only ASCII phone characters."""
    return number.encode("ascii").translate(None, _NOT_DIGITS).decode("ascii")


def _looks_like_several(number: str) -> bool:
    """Tell whether the text has two parts each long enough to be a number of its own.

    Parts are separated by a slash, a comma or a "+", or are runs of digits.
    """
    groups = _BETWEEN_GROUPS.split(number)
    long_groups = sum(1 for group in groups if len(_digits_of(group)) >= NUMBER_DIGITS)
    return long_groups > 1 or len(_NUMBER_RUN.findall(number)) > 1


def _prefix_of(digits: str, *, plus: bool) -> _Prefix:
    if plus:
        return _Prefix.PLUS
    return _Prefix.DOUBLE_ZERO if digits.startswith("00") else _Prefix.NONE


def _parse(number: str, region: str | None) -> PhoneNumber | NumberParseException:
    try:
        return phonenumbers.parse(number, region)
    except NumberParseException as error:
        return error


def _unparsable(error: NumberParseException, shown: str) -> Rejected:
    """Return the rejection for a number the library could not even read."""
    if error.error_type == NumberParseException.TOO_LONG:
        return _too_long(shown)
    if error.error_type == NumberParseException.INVALID_COUNTRY_CODE:
        return _unknown_country_code(shown)
    # NOT_A_NUMBER here means too few digits: the characters were checked already.
    return _too_short(shown)


def _impossible(reason: int, shown: str) -> Rejected:
    """Return the rejection for a parsed number that is not valid, by the library's reason."""
    if reason in (ValidationResult.TOO_SHORT, ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
        return _too_short(shown)
    if reason == ValidationResult.TOO_LONG:
        return _too_long(shown)
    if reason == ValidationResult.INVALID_COUNTRY_CODE:
        return _unknown_country_code(shown)
    return Rejected(
        Problem.PHONE_INVALID,
        f"Phone {_quote(shown)} is not a valid number for its country: "
        "check for a missing or extra digit and for the right country code.",
    )


def _quote(text: str) -> str:
    shown = " ".join(text.split())
    if len(shown) > QUOTE_LIMIT:
        shown = shown[: QUOTE_LIMIT - 1] + "…"
    return f"'{shown}'"


def _missing() -> Rejected:
    return Rejected(
        Problem.PHONE_MISSING, "The phone number is empty: fill it in or remove the row."
    )


def _formula_error(error: str) -> Rejected:
    return Rejected(
        Problem.CELL_FORMULA_ERROR,
        f"The phone cell holds a formula error {error}: fix the formula in the workbook, "
        "or paste the values (Paste Special > Values) and export again.",
    )


def _not_a_number(shown: str) -> Rejected:
    return Rejected(
        Problem.PHONE_NOT_A_NUMBER,
        f"Phone {_quote(shown)} contains letters or symbols: "
        "keep only the number, without extensions or notes.",
    )


def _several(shown: str) -> Rejected:
    return Rejected(
        Problem.PHONE_SEVERAL,
        f"Phone {_quote(shown)} holds more than one number: "
        "keep one number in the cell and put the others on rows of their own.",
    )


def _too_short(shown: str) -> Rejected:
    return Rejected(
        Problem.PHONE_TOO_SHORT,
        f"Phone {_quote(shown)} has too few digits: "
        "check for missing digits or a missing area code.",
    )


def _too_long(shown: str) -> Rejected:
    return Rejected(
        Problem.PHONE_TOO_LONG,
        f"Phone {_quote(shown)} has too many digits: "
        "check for extra digits and keep one number per cell.",
    )


def _unknown_country_code(shown: str) -> Rejected:
    return Rejected(
        Problem.PHONE_INVALID,
        f"Phone {_quote(shown)} does not start with a known country code: "
        "check the digits after the + or 00.",
    )
