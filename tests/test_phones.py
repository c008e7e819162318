"""Phone cells as people type them, and the digits or problem each one becomes."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumber, PhoneNumberFormat, PhoneNumberType

from bulkimport.contacts import Problem, Rejected
from bulkimport.errors import InputError
from bulkimport.rows.phones import PhoneNormalizer, PhonePolicy, check_country

PH = PhonePolicy("PH")
PH_MOBILE = PhonePolicy("PH", mobile_only=True)
NO_COUNTRY = PhonePolicy()

CASES = [
    # national numbers take the default country
    ("PH", PH, "0917 123 4567", "639171234567"),
    ("PH landline", PH, "(02) 8123 4567", "63281234567"),
    ("US", PhonePolicy("US"), "(415) 555-2671", "14155552671"),
    ("US trunk 1", PhonePolicy("US"), "1-415-555-2671", "14155552671"),
    ("GB mobile", PhonePolicy("GB"), "07400 123456", "447400123456"),
    ("KE mobile", PhonePolicy("KE"), "0712 123456", "254712123456"),
    ("IN mobile", PhonePolicy("IN"), "081234 56789", "918123456789"),
    ("NG mobile", PhonePolicy("NG"), "0802 123 4567", "2348021234567"),
    ("DE mobile", PhonePolicy("DE"), "01512 3456789", "4915123456789"),
    ("ID mobile", PhonePolicy("ID"), "0812-345-678", "62812345678"),
    ("ID landline", PhonePolicy("ID"), "(021) 8350123", "62218350123"),
    # international prefixes and trunk marks
    ("plus", PH, "+63 917 123 4567", "639171234567"),
    ("plus in parentheses", PH, "(+63) 917-123-4567", "639171234567"),
    ("trunk mark", PH, "+63 (0)917 123 4567", "639171234567"),
    ("GB trunk mark", PhonePolicy("GB"), "+44 (0)20 7946 0958", "442079460958"),
    ("NG trunk mark", PhonePolicy("NG"), "+234 (0)802 123 4567", "2348021234567"),
    ("DE trunk mark", PhonePolicy("DE"), "+49 (0)30 123456", "4930123456"),
    ("double zero", PH, "0063 917 123 4567", "639171234567"),
    ("double zero in DE", PhonePolicy("DE"), "0049 1512 3456789", "4915123456789"),
    ("double zero in US", PhonePolicy("US"), "0063 917 123 4567", "639171234567"),
    ("US exit code", PhonePolicy("US"), "011 63 917 123 4567", "639171234567"),
    ("AU exit code", PhonePolicy("AU"), "0011 44 20 7946 0958", "442079460958"),
    ("KE plus", PhonePolicy("KE"), "+254 712 123 456", "254712123456"),
    ("IN plus", PhonePolicy("IN"), "+91 98765 43210", "919876543210"),
    ("GB number in US file", PhonePolicy("US"), "+44 7400 123456", "447400123456"),
    # digits without + from an export
    ("export digits", PH, "639171234567", "639171234567"),
    ("export KE digits", PhonePolicy("KE"), "254712123456", "254712123456"),
    ("foreign digits", PH, "14155552671", "14155552671"),
    ("digits, no country", NO_COUNTRY, "639171234567", "639171234567"),
    ("plus, no country", NO_COUNTRY, "+1 415 555 2671", "14155552671"),
    # spreadsheet leftovers and Unicode
    ("float", PH, "639171234567.0", "639171234567"),
    ("apostrophe", PH, "'09171234567", "639171234567"),
    ("excel text formula", PH, '="09171234567"', "639171234567"),
    ("surrounding space", PH, " \t0917 123 4567 \n", "639171234567"),
    ("dots", PhonePolicy("US"), "+1 415.555.2671", "14155552671"),
    ("slashes", PH, "0917/123/4567", "639171234567"),
    ("DE slash", PhonePolicy("DE"), "030/123456", "4930123456"),
    ("trailing semicolon", PH, "+63 917 123 4567;", "639171234567"),
    ("full-width", PH, "０９１７－１２３－４５６７", "639171234567"),
    ("Arabic-Indic", PH, "٠٩١٧١٢٣٤٥٦٧", "639171234567"),
    ("Devanagari", PhonePolicy("IN"), "०९८७६५४३२१०", "919876543210"),
    ("odd spaces", PH, "0917\u00a0123\u202f4567\u2009", "639171234567"),
    ("zero-width", PH, "\ufeff0917\u200b123\u200c45\u200d67", "639171234567"),
    ("bidi and dashes", PH, "\u200e+63\u200f917\u2013123\u20144567", "639171234567"),
    ("soft hyphen and word joiner", PH, "0917\u00ad123\u20604567", "639171234567"),
    ("tab inside", PhonePolicy("KE"), "0712\t123456", "254712123456"),
    # rejections
    ("empty", PH, "", Problem.PHONE_MISSING),
    ("a failed VLOOKUP", PH, "#N/A", Problem.CELL_FORMULA_ERROR),
    ("a division by zero", PH, " #DIV/0! ", Problem.CELL_FORMULA_ERROR),
    ("blank", PH, "  \u00a0 ", Problem.PHONE_MISSING),
    ("dash for none", PH, "-", Problem.PHONE_MISSING),
    ("letters", PH, "call the office", Problem.PHONE_NOT_A_NUMBER),
    ("n/a", PH, "N/A", Problem.PHONE_NOT_A_NUMBER),
    ("extension", PH, "0917 123 4567 ext 12", Problem.PHONE_NOT_A_NUMBER),
    ("GB extension", PhonePolicy("GB"), "07400 123456 x5", Problem.PHONE_NOT_A_NUMBER),
    ("plus in the middle", PH, "0917+1234567", Problem.PHONE_NOT_A_NUMBER),
    ("scientific", PH, "6.39171E+11", Problem.PHONE_SCIENTIFIC),
    ("scientific, comma", PH, "6,39171E+11", Problem.PHONE_SCIENTIFIC),
    ("scientific, lower case", PhonePolicy("KE"), "2.54712e+11", Problem.PHONE_SCIENTIFIC),
    ("several, slash", PH, "0917 123 4567 / 0918 765 4321", Problem.PHONE_SEVERAL),
    ("several, comma", PH, "+63 917 123 4567, +63 918 765 4321", Problem.PHONE_SEVERAL),
    ("several, semicolon", PhonePolicy("KE"), "0712 123456; 0722 123456", Problem.PHONE_SEVERAL),
    ("several, or", PH, "0917 123 4567 or 0918 765 4321", Problem.PHONE_SEVERAL),
    ("several, and", PhonePolicy("NG"), "0802 123 4567 and 0803 123 4567", Problem.PHONE_SEVERAL),
    ("several, newline", PH, "09171234567\n09181234567", Problem.PHONE_SEVERAL),
    ("several, space", PH, "09171234567 09181234567", Problem.PHONE_SEVERAL),
    ("several, two plus", PH, "+639171234567 +639181234567", Problem.PHONE_SEVERAL),
    ("several, ID slash", PhonePolicy("ID"), "0812 345 678 / 0813 456 789", Problem.PHONE_SEVERAL),
    ("no country", NO_COUNTRY, "0917 123 4567", Problem.PHONE_NO_COUNTRY),
    ("no country, bare", NO_COUNTRY, "9171234567", Problem.PHONE_NO_COUNTRY),
    ("too short", PH, "123", Problem.PHONE_TOO_SHORT),
    ("US too short", PhonePolicy("US"), "415 555 267", Problem.PHONE_TOO_SHORT),
    ("KE too short", PhonePolicy("KE"), "+254 712", Problem.PHONE_TOO_SHORT),
    ("DE too short", PhonePolicy("DE"), "+49 30 1", Problem.PHONE_TOO_SHORT),
    ("too long", PH, "0917 123 4567 8901 23", Problem.PHONE_TOO_LONG),
    ("KE too long", PhonePolicy("KE"), "+254 712 123 456 789 0123", Problem.PHONE_TOO_LONG),
    ("US invalid area code", PhonePolicy("US"), "(123) 456-7890", Problem.PHONE_INVALID),
    ("IN invalid", PhonePolicy("IN"), "+91 98765 4321", Problem.PHONE_INVALID),
    ("NG invalid", PhonePolicy("NG"), "0802 123 4567 890", Problem.PHONE_INVALID),
    ("unknown country code", PH, "+0917 123 4567", Problem.PHONE_INVALID),
    # policy switches
    ("possible allowed", PhonePolicy("US", allow_possible=True), "(123) 456-7890", "11234567890"),
    ("mobile", PH_MOBILE, "0917 123 4567", "639171234567"),
    ("US mobile or fixed", PhonePolicy("US", mobile_only=True), "415 555 2671", "14155552671"),
    ("landline, mobile only", PH_MOBILE, "(02) 8123 4567", Problem.PHONE_NOT_MOBILE),
    ("GB landline", PhonePolicy("GB", mobile_only=True), "020 7946 0958", Problem.PHONE_NOT_MOBILE),
    ("toll free", PhonePolicy("KE", mobile_only=True), "0800 223 456", Problem.PHONE_NOT_MOBILE),
    (
        "possible has no known type",
        PhonePolicy("US", allow_possible=True, mobile_only=True),
        "(123) 456-7890",
        Problem.PHONE_NOT_MOBILE,
    ),
]


@pytest.mark.parametrize(
    ("policy", "raw", "expected"),
    [pytest.param(policy, raw, expected, id=name) for name, policy, raw, expected in CASES],
)
def test_normalize(policy: PhonePolicy, raw: str, expected: str | Problem) -> None:
    result = PhoneNormalizer(policy).normalize(raw)
    if isinstance(expected, Problem):
        assert isinstance(result, Rejected), result
        assert result.code is expected
    else:
        assert result == expected


def test_message_quotes_the_cell_and_tells_the_fix() -> None:
    result = PhoneNormalizer(PH).normalize("6.39171E+11")
    assert isinstance(result, Rejected)
    assert "'6.39171E+11'" in result.message
    assert "as Text" in result.message


def test_message_truncates_a_long_cell() -> None:
    raw = "call 0917 123 4567 after five, or ask at the front desk for Maria"
    result = PhoneNormalizer(PH).normalize(raw)
    assert isinstance(result, Rejected)
    assert result.code is Problem.PHONE_NOT_A_NUMBER
    assert "'call 0917 123 4567 after five, or ask a…'" in result.message
    assert "Maria" not in result.message


def test_no_country_message_names_the_option() -> None:
    result = PhoneNormalizer(NO_COUNTRY).normalize("0917 123 4567")
    assert isinstance(result, Rejected)
    assert "--country" in result.message


def test_repeated_cells_give_the_same_answer() -> None:
    normalizer = PhoneNormalizer(PH)
    first = normalizer.normalize("0917 123")
    assert normalizer.normalize("0917 123") is first
    assert normalizer.normalize("0917 123 4567") == "639171234567"


def test_check_country_upper_cases() -> None:
    assert check_country("ph") == "PH"


def test_check_country_rejects_unknown() -> None:
    with pytest.raises(InputError, match=r"Unknown country 'XX': use a two-letter code"):
        check_country("XX")


def test_normalizer_checks_policy_country() -> None:
    assert PhoneNormalizer(PhonePolicy("ke")).normalize("0712 123456") == "254712123456"
    with pytest.raises(InputError):
        PhoneNormalizer(PhonePolicy("XX"))


# Property: every example number of every region and type, written the ways people
# write it, normalizes to its E.164 digits, and those digits normalize to themselves.

EXAMPLE_TYPES = (
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.PAGER,
    PhoneNumberType.UAN,
    PhoneNumberType.VOICEMAIL,
)


def _examples() -> list[tuple[str, PhoneNumber]]:
    found = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for number_type in EXAMPLE_TYPES:
            number = phonenumbers.example_number_for_type(region, number_type)
            if number is not None:
                found.append((region, number))
    return found


EXAMPLES = _examples()
REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
DIGIT_SCRIPTS = ("0123456789", "０１２３４５６７８９", "٠١٢٣٤٥٦٧٨٩", "०१२३४५६७८९")
SEPARATORS = (" ", "-", ".", "/", "\u00a0", "\u202f", "\u2009", "\u2013", "\u2014", "  ")
INVISIBLE = ("\u200b", "\u200c", "\u200d", "\ufeff", "\u200e", "\u200f")
STYLES = ("national", "international", "double zero", "e164", "digits")


@st.composite
def written_numbers(draw: st.DrawFn) -> tuple[PhonePolicy, str, str, str]:
    """Draw (policy, style, cell text, E.164 digits) for a valid number written by a person."""
    region, number = draw(st.sampled_from(EXAMPLES))
    expected = phonenumbers.format_number(number, PhoneNumberFormat.E164)[1:]
    style = draw(st.sampled_from(STYLES))
    if style == "national":
        country: str | None = region
        text = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    else:
        country = draw(st.sampled_from((region, None)) | st.sampled_from(REGIONS))
        text = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
        if style == "double zero":
            text = "00" + text[1:]
        elif style in ("e164", "digits"):
            text = ("+" if style == "e164" else "") + expected
    text = "".join(draw(st.sampled_from(SEPARATORS)) if char in " -" else char for char in text)
    script = draw(st.sampled_from(DIGIT_SCRIPTS))
    text = text.translate(str.maketrans("0123456789", script))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(INVISIBLE)) + text[at:]
    if draw(st.booleans()):
        text = "'" + text
    text = draw(st.sampled_from(("", " ", "\t"))) + text + draw(st.sampled_from(("", " ")))
    return PhonePolicy(country), style, text, expected


def _digits_reading(digits: str, country: str | None) -> str:
    """Return what international digits without "+" settle to in a file of ``country``.

    This is a genuine ambiguity of the rules: digits can be valid both as an
    international number and as a national number of the default country (in a DE
    file, 971501234567 is +971 50 123 4567 and +49 971 501234567). The rules read them as
    national, unless they start with the country's own calling code, which is how
    exports write that country's numbers (62812345678 in an ID file is +62 812345678,
    not +62 62812345678).
    """
    if country is None or digits.startswith(str(phonenumbers.country_code_for_region(country))):
        return digits
    national = phonenumbers.parse(digits, country)
    if not phonenumbers.is_valid_number(national):
        return digits
    return phonenumbers.format_number(national, PhoneNumberFormat.E164)[1:]


@settings(max_examples=500, deadline=None)
@given(written_numbers())
def test_valid_numbers_normalize_to_e164_and_stay_put(
    written: tuple[PhonePolicy, str, str, str],
) -> None:
    policy, style, text, expected = written
    normalizer = PhoneNormalizer(policy)
    settled = _digits_reading(expected, policy.country)
    assert normalizer.normalize(text) == (settled if style == "digits" else expected)
    assert normalizer.normalize(expected) == settled
    assert normalizer.normalize(settled) == settled


def test_uk_is_taken_for_gb() -> None:
    from bulkimport.rows.phones import check_country

    assert check_country("uk") == "GB"
