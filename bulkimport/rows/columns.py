"""Header mapping: which spreadsheet column feeds which contact field.

Headers are compared by their *key*: lower case, letters and digits only, so
``Mobile No.``, ``mobile_no`` and ``MOBILE NO`` are the same header.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from bulkimport.contacts import Field
from bulkimport.errors import InputError
from bulkimport.read.table import listed

CUSTOM_PREFIX = "custom:"
IGNORE = "ignore"

# Synonyms in tiers: a header in an earlier tier wins over one in a later tier
# (an engageSPARK export has both "Full Phone Number" and the national "Phone
# Number"); two headers in the same best tier are a conflict the user settles.
SYNONYMS: dict[Field, tuple[frozenset[str], ...]] = {
    Field.PHONE: (
        frozenset({"fullphonenumber", "fullphone", "msisdn", "internationalnumber"}),
        frozenset(
            {
                "phone",
                "phonenumber",
                "phoneno",
                "mobile",
                "mobileno",
                "mobilenumber",
                "mobilephone",
                "mobilephonenumber",
                "cell",
                "cellphone",
                "cellno",
                "cellnumber",
                "cellphonenumber",
                "cellphoneno",
                "contactnumber",
                "contactno",
                "telephone",
                "telephonenumber",
                "tel",
                "whatsapp",
                "whatsappnumber",
                "whatsappno",
                "celular",
                "numerodecelular",
                "mobilenum",
                "phonenum",
                "urntel",  # RapidPro's contact export, once per number of the contact
                "urnwhatsapp",
            }
        ),
    ),
    Field.FIRST_NAME: (
        frozenset({"firstname", "givenname", "first", "given", "fname", "forename"}),
    ),
    Field.LAST_NAME: (
        frozenset({"lastname", "surname", "familyname", "last", "lname", "apellido", "apellidos"}),
    ),
    Field.FULL_NAME: (
        frozenset(
            {
                "name",
                "fullname",
                "completename",
                "contactname",
                "applicantname",
                "employeename",
                "nombre",
                "nombrecompleto",
                "applicant",
            }
        ),
    ),
    Field.EMAIL: (frozenset({"email", "emailaddress", "mail", "correo", "correoelectronico"}),),
    Field.LANGUAGE: (frozenset({"language", "lang", "preferredlanguage"}),),
    Field.GROUPS: (frozenset({"groups", "group", "groupids", "groupid", "grupo", "grupos"}),),
    Field.ORGANIZATION: (
        frozenset({"organizationid", "organisationid", "orgid", "organization", "organisation"}),
    ),
    Field.CONTACT_ID: (frozenset({"contactid", "engagesparkid", "engagesparkcontactid"}),),
}

# A bare "ID" column is an engageSPARK contact id only in a file shaped like an
# engageSPARK contacts export, or when the user maps it (--map "ID=id"). In an
# HR tracker or any other export it is the file's own number, and taking it for
# a contact id would subscribe whoever holds those ids.
BARE_ID = "id"
# An export's phone column is "Full Phone Number"; an export whose phone columns
# were deleted still has both of these.
EXPORT_PHONE = "fullphonenumber"
EXPORT_WITHOUT_PHONE = frozenset({"dialingcode", "createddate"})

FIELD_ALIASES: dict[str, Field] = {
    **{f.value.lower(): f for f in Field},
    "phone": Field.PHONE,
    "first_name": Field.FIRST_NAME,
    "last_name": Field.LAST_NAME,
    "name": Field.FULL_NAME,
    "full_name": Field.FULL_NAME,
    "organization": Field.ORGANIZATION,
    "contact_id": Field.CONTACT_ID,
    "contactid": Field.CONTACT_ID,
}

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_COLUMN_NUMBER = re.compile(r"column\s*([0-9]+)", re.IGNORECASE)


def header_key(header: str) -> str:
    """Return the comparison key of a header: lower case letters and digits only."""
    return _NON_ALNUM.sub("", header.casefold())


@dataclass(frozen=True)
class MapOverride:
    """One ``--map "Header=target"``: a field, a custom field, or ``ignore``."""

    header: str
    field: Field | None = None
    custom: str | None = None  # custom field name or id, as the user wrote it

    @property
    def ignored(self) -> bool:
        return self.field is None and self.custom is None


def parse_map(option: str) -> MapOverride:
    """Parse ``Header=field``, ``Header=custom:Name`` or ``Header=ignore``."""
    header, sep, target = option.rpartition("=")
    header, target = header.strip(), target.strip()
    if not sep or not header or not target:
        raise InputError(
            f'--map {option!r} is not of the form "Header=field": '
            'for example --map "Mobile No.=fullPhoneNumber".'
        )
    if target.lower().startswith(CUSTOM_PREFIX):
        name = target[len(CUSTOM_PREFIX) :].strip()
        if not name:
            raise InputError(f'--map {option!r} names no custom field: write "custom:Position".')
        return MapOverride(header, custom=name)
    if target.lower() in (IGNORE, "-"):
        return MapOverride(header)
    found = FIELD_ALIASES.get(target.lower())
    if found is None:
        known = ", ".join(f.value for f in Field)
        raise InputError(
            f"--map {option!r}: unknown field {target!r}; use one of {known}, "
            "custom:NAME or ignore."
        )
    return MapOverride(header, field=found)


@dataclass(frozen=True)
class ColumnMapping:
    """Column positions for each mapped field, custom fields, and what was left out."""

    header: tuple[str, ...]
    fields: dict[Field, int]
    custom: dict[str, int] = field(default_factory=dict)  # custom field name/id -> column
    ignored: tuple[str, ...] = ()

    @property
    def identifies_contacts(self) -> bool:
        return Field.PHONE in self.fields or Field.CONTACT_ID in self.fields

    def describe(self) -> list[tuple[str, str]]:
        """Return (header, target) pairs in column order, for summaries (blank: ``column N``)."""
        targets: dict[int, str] = {i: f.value for f, i in self.fields.items()}
        targets.update({i: f"{CUSTOM_PREFIX}{name}" for name, i in self.custom.items()})
        return [(self.header[i] or f"column {i + 1}", targets[i]) for i in sorted(targets)]


def map_columns(header: Sequence[str], overrides: Sequence[MapOverride] = ()) -> ColumnMapping:
    """Map a header row to contact fields: explicit overrides first, then synonyms.

    Raises InputError when an override names a missing header, when two
    columns claim one field, or when neither a phone nor a contact id column
    is found.
    """
    header = tuple(header)
    fields: dict[Field, int] = {}
    custom: dict[str, int] = {}
    taken: set[int] = set()
    for override in overrides:
        index = _find_header(header, override.header)
        taken.add(index)
        if override.field is not None:
            if override.field in fields and fields[override.field] != index:
                raise InputError(
                    f"--map gives {override.field.value} two columns; map each field once."
                )
            fields[override.field] = index
        elif override.custom is not None:
            custom[override.custom] = index

    keys = [header_key(h) for h in header]
    for target, tiers in SYNONYMS.items():
        if target in fields:
            continue
        chosen = _best_tier_column(header, keys, tiers, taken, target)
        if chosen is not None:
            fields[target] = chosen
            taken.add(chosen)

    bare = [i for i, k in enumerate(keys) if k == BARE_ID and i not in taken]
    if Field.CONTACT_ID not in fields and len(bare) == 1 and _is_export(keys, fields):
        fields[Field.CONTACT_ID] = bare[0]
        taken.add(bare[0])

    if Field.FULL_NAME in fields and Field.FIRST_NAME in fields:
        # First/last columns are more precise than a combined one.
        taken.discard(fields.pop(Field.FULL_NAME))

    ignored = tuple(h for i, h in enumerate(header) if i not in taken and h)
    mapping = ColumnMapping(header, fields, custom, ignored)
    if not mapping.identifies_contacts:
        shown = _listed_columns(header) or "(none)"
        message = (
            f"No phone or contact id column found among the headers {shown}: "
            'name it with --map, for example --map "Mobile No.=fullPhoneNumber".'
        )
        if len(bare) == 1:
            name = header[bare[0]]
            message += (
                f" The column {name!r} is not taken for engageSPARK contact ids, because "
                "the file is not an engageSPARK contacts export; if those ids really are "
                f'engageSPARK\'s, pass --map "{name}=id".'
            )
        raise InputError(message)
    return mapping


def _is_export(keys: list[str], fields: dict[Field, int]) -> bool:
    """Whether the header is shaped like an engageSPARK contacts export."""
    if Field.PHONE in fields:
        return keys[fields[Field.PHONE]] == EXPORT_PHONE
    return set(keys) >= EXPORT_WITHOUT_PHONE


def column_name(header: Sequence[str], index: int) -> str:
    """Return how messages name a column: its header quoted, or ``column N`` when blank."""
    name = header[index]
    return repr(name) if name else f"column {index + 1}"


def _listed_columns(header: tuple[str, ...]) -> str:
    """List the columns for a message, blank ones as ``column N``, up to the last named one."""
    named = [i for i, name in enumerate(header) if name]
    return listed([column_name(header, i) for i in range(named[-1] + 1)] if named else [])


def _find_header(header: tuple[str, ...], wanted: str) -> int:
    """Return the column ``--map`` names: by header, or ``column N`` (N from 1, column A).

    ``column N`` is how reports name a column whose header cell is blank; it
    also picks one of several columns with the same header (RapidPro's
    repeated ``URN:Tel``). A header really called ``column N`` is matched by
    name unless column N itself is blank.
    """
    position = _COLUMN_NUMBER.fullmatch(wanted.strip())
    number = int(position.group(1)) if position else 0
    if 1 <= number <= len(header) and not header[number - 1].strip():
        return number - 1
    for exact in (True, False):
        for index, name in enumerate(header):
            if (name == wanted) if exact else (header_key(name) == header_key(wanted)):
                return index
    if 1 <= number <= len(header):
        return number - 1
    shown = _listed_columns(header)
    raise InputError(f"--map names a column {wanted!r} that is not in the header ({shown}).")


def _best_tier_column(
    header: tuple[str, ...],
    keys: list[str],
    tiers: tuple[frozenset[str], ...],
    taken: set[int],
    target: Field,
) -> int | None:
    for tier in tiers:
        hits = [i for i, k in enumerate(keys) if k in tier and i not in taken]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise InputError(_conflict(header, hits, target))
    return None


def _conflict(header: tuple[str, ...], hits: list[int], target: Field) -> str:
    """Say which columns could all be ``target`` and how to choose one of them.

    Columns that share a header (RapidPro writes ``URN:Tel`` once per number)
    are told apart by their position, and chosen with ``column N``.
    """
    repeated = len({header[i] for i in hits}) < len(hits)
    if repeated:
        names = [f"{header[i]!r} (column {i + 1})" for i in hits]
        choice = f"column {hits[0] + 1}"
    else:
        names = [repr(header[i]) for i in hits]
        choice = header[hits[0]]
    both = "both" if len(hits) == 2 else "all"
    others = "other is" if len(hits) == 2 else "others are"
    return (
        f"Columns {' and '.join([', '.join(names[:-1]), names[-1]])} could {both} be "
        f'{target.value}: choose one with --map "{choice}={target.value}" '
        f"(the {others} then ignored)."
    )
