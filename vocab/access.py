"""Access level of each battery passport attribute (Regulation (EU) 2023/1542 Art. 77(2)).

Access control in the passport is per attribute, not per credential or aspect: one credential
mixes public data (rated capacity) with data only persons with a legitimate interest may read
(state of health). The levels come from the access matrix bundled as
``vocab/data/access-matrix.csv`` (one row per attribute of the Battery Pass longlist v1.2 /
DIN DKE SPEC 99100, see ``vocab/data/ORIGIN.md``). Which row applies to which of our terms is
kept in one place only, the ontology's ``bp:accessMatrixRow`` annotations; the ontology's
``bp:accessLevel`` annotations repeat the row's level for RDF consumers and a test keeps the
two in agreement.

Both files are read on first use and cached: importing this module costs nothing.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from types import MappingProxyType

from vocab.contexts_bundle import BATTERY_VOCAB

MATRIX_FILE = "data/access-matrix.csv"
ONTOLOGY_FILE = "ontology/battery-passport.ttl"


class AccessLevel(StrEnum):
    """Who may read an attribute (Annex XIII points 1 to 4)."""

    PUBLIC = "public"
    LEGITIMATE_INTEREST = "legitimate-interest"
    LEGITIMATE_INTEREST_AND_COMMISSION = "legitimate-interest-and-commission"
    AUTHORITIES = "authorities"

    @property
    def iri(self) -> str:
        """The ontology's individual for this level (``bp:Public`` ...)."""
        return BATTERY_VOCAB + "".join(word.capitalize() for word in self.value.split("-"))

    @classmethod
    def from_matrix(cls, group: str) -> AccessLevel:
        """The level of a matrix ``access_group`` value (``legitimate_interest`` ...)."""
        return cls(group.strip().replace("_", "-"))


class UnknownAttribute(KeyError):
    """No term of ours and no attribute of the access matrix has that name.

    A ``KeyError`` so that callers treating the levels as a mapping can catch it as such; its
    ``str`` is the plain message (``KeyError`` would show the repr).
    """

    def __init__(self, attribute: str, suggestions: list[str]) -> None:
        hint = f"; did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        message = (
            f"unknown passport attribute {attribute!r}: not a term of the battery vocabulary "
            f"({BATTERY_VOCAB}) nor an attribute of the access matrix{hint}"
        )
        super().__init__(message)
        self.attribute = attribute
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class MatrixRow:
    """One attribute of the access matrix: what a policy needs to explain a decision."""

    number: int
    attribute: str
    level: AccessLevel
    catenax_path: str
    batterypass_property: str


@dataclass(frozen=True, slots=True)
class _Table:
    rows: MappingProxyType[int, MatrixRow]
    term_rows: MappingProxyType[str, int]  # our term -> matrix row number
    lookup: MappingProxyType[str, int]  # normalised name -> matrix row number


def _normalise(name: str) -> str:
    return " ".join(name.split()).casefold()


def _read_text(name: str) -> str:
    return resources.files("vocab").joinpath(name).read_text("utf-8")


def _read_rows() -> dict[int, MatrixRow]:
    rows: dict[int, MatrixRow] = {}
    for record in csv.DictReader(io.StringIO(_read_text(MATRIX_FILE))):
        number = int(record["ll_no"])
        rows[number] = MatrixRow(
            number=number,
            attribute=record["attribute"].strip(),
            level=AccessLevel.from_matrix(record["access_group"]),
            catenax_path=record["catenax_battery_pass_6_1_0_path"],
            batterypass_property=record["batterypass_1_2_property"],
        )
    return rows


def _read_term_rows() -> dict[str, int]:
    """Term name -> ``bp:accessMatrixRow`` of every property the ontology annotates."""
    # rdflib is imported here, not at module level: most importers of ``vocab`` never need it.
    from rdflib import Graph, Literal, URIRef

    graph = Graph()
    graph.parse(data=_read_text(ONTOLOGY_FILE), format="turtle")
    found: dict[str, int] = {}
    for subject, row in graph.subject_objects(URIRef(BATTERY_VOCAB + "accessMatrixRow")):
        iri = str(subject)
        if iri.startswith(BATTERY_VOCAB) and isinstance(row, Literal):
            found[iri.removeprefix(BATTERY_VOCAB)] = int(str(row))
    return found


def _aliases(attribute: str) -> set[str]:
    """Short forms of a matrix attribute a user is likely to type: the part before a colon
    ("Dismantling information") and the name without a trailing parenthesis ("State of
    certified energy")."""
    forms = {attribute}
    forms.add(attribute.split(":", 1)[0])
    forms.add(re.sub(r"\s*\([^)]*\)\s*$", "", attribute))
    return {_normalise(form) for form in forms if form.strip()}


@cache
def _table() -> _Table:
    rows = _read_rows()
    term_rows = _read_term_rows()
    missing = sorted(term for term, row in term_rows.items() if row not in rows)
    if missing:
        raise RuntimeError(f"ontology names access-matrix rows that do not exist for {missing}")
    # A short form counts only when it names one row; full names and our terms always count.
    short: dict[str, set[int]] = {}
    for row in rows.values():
        for alias in _aliases(row.attribute):
            short.setdefault(alias, set()).add(row.number)
    lookup = {alias: min(numbers) for alias, numbers in short.items() if len(numbers) == 1}
    lookup.update({_normalise(row.attribute): row.number for row in rows.values()})
    lookup.update({_normalise(term): number for term, number in term_rows.items()})
    return _Table(MappingProxyType(rows), MappingProxyType(term_rows), MappingProxyType(lookup))


def matrix_row(attribute: str) -> MatrixRow:
    """The access-matrix row that governs ``attribute``.

    ``attribute`` is one of our terms (``stateOfHealthPct``, ``bp:stateOfHealthPct`` or the
    full IRI) or an attribute name of the matrix (``"Battery identifier"``; also its short form
    before a colon or parenthesis); case and repeated spaces do not matter.
    Raises ``UnknownAttribute`` otherwise.
    """
    table = _table()
    name = attribute.strip()
    for prefix in (BATTERY_VOCAB, "bp:"):
        if name.startswith(prefix):
            name = name.removeprefix(prefix)
            break
    number = table.lookup.get(_normalise(name))
    if number is None:
        choices = sorted(set(table.term_rows) | {r.attribute for r in table.rows.values()})
        by_key = {_normalise(c): c for c in choices}
        close = difflib.get_close_matches(_normalise(name), list(by_key), n=3, cutoff=0.6)
        raise UnknownAttribute(attribute, [by_key[c] for c in close])
    return table.rows[number]


def access_level(attribute: str) -> AccessLevel:
    """Who may read ``attribute`` (see ``matrix_row`` for the names accepted)."""
    return matrix_row(attribute).level


def attributes(level: AccessLevel | str) -> tuple[str, ...]:
    """Our terms whose access level is ``level``, sorted: what a holder may disclose to a
    reader entitled to exactly that level."""
    wanted = AccessLevel(level)
    table = _table()
    return tuple(
        sorted(term for term, row in table.term_rows.items() if table.rows[row].level is wanted)
    )


def terms() -> MappingProxyType[str, AccessLevel]:
    """Every term of ours with its access level."""
    table = _table()
    return MappingProxyType({t: table.rows[r].level for t, r in sorted(table.term_rows.items())})


__all__ = [
    "AccessLevel",
    "MatrixRow",
    "UnknownAttribute",
    "access_level",
    "attributes",
    "matrix_row",
    "terms",
]
