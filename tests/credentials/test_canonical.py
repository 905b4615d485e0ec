"""The canonicalisation fast paths must agree with their references on every input.

``canonical_json`` (stdlib json when safe) against ``rfc8785.dumps``, and
``canonize_proof_config`` (a pyld template filled in with the values) against a full pyld
``canonize_rdfc`` run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credentials.errors import CredentialsError, MalformedDocument, NumberOutOfRange
from credentials.jcs import canonical_json
from credentials.jsonld import canonize_rdfc
from credentials.numbers import MAX_SAFE_INTEGER, check_numbers
from credentials.proof_config import canonize_proof_config

CREDENTIALS_V2 = "https://www.w3.org/ns/credentials/v2"
BATTERY_V1 = "https://w3id.org/battery-passport-connector/battery/v1"

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# --- canonical_json == rfc8785 ----------------------------------------------------------------

# Characters where JSON escaping or UTF-16 key ordering could differ: controls, quotes, the
# JavaScript line separators, the last BMP characters (which sort *after* astral characters by
# code point but *before* them by UTF-16 code unit), emoji and other astral characters.
TRICKY = ["\x00", "\x01", "\x08", "\t", "\n", "\x0c", "\r", "\x1f", "\x7f", "\x80", '"', "\\",
          "/", "<", "\u00e9", "\u2028", "\u2029", "\ud7ff", "\ue000", "\uf8ff", "\ufeff",
          "\uffef", "\uffff", "\U00010000", "\U0001f600", "\U0001f50b", "\U0010ffff"]
chars = st.one_of(st.characters(exclude_categories=("Cs",)), st.sampled_from(TRICKY))
strings = st.text(alphabet=chars, max_size=12)
keys = st.text(alphabet=chars, max_size=6)
safe_ints = st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
edge_ints = st.sampled_from([0, -1, 1, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 2**31, -(2**31)])


@st.composite
def short_floats(draw: st.DrawFn) -> float:
    """Finite floats with at most 15 significant digits (what the number policy accepts)."""
    # Bounded so that rounding to fewer digits cannot overflow to infinity.
    value = draw(st.floats(min_value=-1e308, max_value=1e308))
    digits = draw(st.integers(min_value=0, max_value=14))
    return float(f"{value:.{digits}e}")


def json_documents(numbers: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), strings, numbers)
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=5),
            st.dictionaries(keys, children, max_size=5),
        ),
        max_leaves=25,
    )


@SETTINGS
@given(json_documents(st.one_of(safe_ints, edge_ints)))
def test_canonical_json_equals_rfc8785_without_floats(doc: Any) -> None:
    assert canonical_json(doc) == rfc8785.dumps(doc)


@SETTINGS
@given(json_documents(st.one_of(safe_ints, short_floats(), st.sampled_from([0.0, -0.0, 1e21,
                                                                           1e-7, 5e-324]))))
def test_canonical_json_equals_rfc8785_with_floats(doc: Any) -> None:
    assert canonical_json(doc) == rfc8785.dumps(doc)


@SETTINGS
@given(json_documents(st.floats(allow_nan=False, allow_infinity=False)))
def test_canonical_json_any_float_is_rfc8785_or_refused_by_the_number_policy(doc: Any) -> None:
    try:
        check_numbers(doc)
    except NumberOutOfRange:
        with pytest.raises(NumberOutOfRange):
            canonical_json(doc)
    else:
        assert canonical_json(doc) == rfc8785.dumps(doc)


@SETTINGS
@given(st.dictionaries(keys, safe_ints, min_size=2, max_size=8))
def test_canonical_json_key_order_is_utf16(doc: dict[str, int]) -> None:
    assert canonical_json(doc) == rfc8785.dumps(doc)


def test_canonical_json_sorts_bmp_private_use_after_astral() -> None:
    doc = {"\ue000": 1, "\U0001f600": 2, "a": 3}
    assert canonical_json(doc) == rfc8785.dumps(doc)
    assert canonical_json(doc).decode("utf-8") == '{"a":3,"\U0001f600":2,"\ue000":1}'


@pytest.mark.parametrize("doc", [
    pytest.param({"a": "\ud800"}, id="value"),
    pytest.param(["\udfff"], id="list-item"),
    pytest.param({"\ud800": 1}, id="key"),
    pytest.param({"ok": {"\udc00x": True}}, id="nested-key"),
])
def test_canonical_json_lone_surrogate_is_a_typed_error(doc: Any) -> None:
    """json.loads accepts ``"\\ud800"``, so documents from the wire can hold lone surrogates.

    canonical_json must refuse them with a CredentialsError (MalformedDocument), as its
    docstring promises, not let rfc8785's UnicodeEncodeError escape.
    """
    with pytest.raises(MalformedDocument):
        canonical_json(doc)


@pytest.mark.parametrize("value", [MAX_SAFE_INTEGER + 1, -(MAX_SAFE_INTEGER + 1), 2**64])
def test_canonical_json_refuses_integers_outside_ijson(value: int) -> None:
    with pytest.raises(NumberOutOfRange):
        canonical_json({"n": value})


# --- canonize_proof_config == canonize_rdfc ---------------------------------------------------

BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
# Text for challenge/domain: printable ASCII (template path) mixed with what N-Quads escapes
# or what forces the full path: quotes, backslashes, newlines, non-ASCII.
text_chars = st.one_of(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    st.sampled_from(['"', "\\", "\n", "\r", "\t", "\x00", "\x7f", "<", ">", "{", "`", "\u00e9",
                     "\u2028", "\U0001f50b", "\ufffd"]),
    st.characters(exclude_categories=("Cs",)),
)
free_text = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30),
    st.text(alphabet=text_chars, max_size=30),
)


@st.composite
def datetime_strings(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
    style = draw(st.sampled_from(["Z", "Z-ms", "offset", "naive", "iso"]))
    if style == "Z":
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == "Z-ms":
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if style == "offset":
        minutes = draw(st.integers(min_value=-14 * 60, max_value=14 * 60))
        return moment.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat()
    if style == "naive":
        return moment.strftime("%Y-%m-%dT%H:%M:%S")
    return moment.replace(tzinfo=UTC).isoformat()


did_key_vms = st.builds(
    lambda a, b: f"did:key:z{a}#z{b or a}",
    st.text(alphabet=BASE58, min_size=1, max_size=48),
    st.text(alphabet=BASE58, max_size=48),
)
host = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]{1,10}){0,3}", fullmatch=True)
path_chars = st.one_of(
    st.sampled_from("abcXYZ0129-._~!$&'()*+,;=:@/%?#"),
    st.sampled_from(["\u00e9", "\u4e2d", "\U0001f50b"]),
)
https_vms = st.builds(
    lambda h, p: f"https://{h}/{p}",
    host,
    st.text(alphabet=path_chars, max_size=30),
)


@st.composite
def proof_configs(draw: st.DrawFn) -> dict[str, Any]:
    config: dict[str, Any] = {
        "type": "DataIntegrityProof",
        "cryptosuite": draw(st.sampled_from(["eddsa-rdfc-2022", "eddsa-jcs-2022"])),
        "created": draw(datetime_strings()),
        "verificationMethod": draw(st.one_of(did_key_vms, https_vms)),
        "proofPurpose": draw(st.sampled_from(["assertionMethod", "authentication"])),
    }
    for name in ("challenge", "domain"):
        if draw(st.booleans()):
            config[name] = draw(free_text)
    if draw(st.booleans()):
        config["expires"] = draw(datetime_strings())
    config["@context"] = draw(st.sampled_from([[CREDENTIALS_V2], [CREDENTIALS_V2, BATTERY_V1]]))
    # Key order must not matter either.
    items = draw(st.permutations(list(config.items())))
    return dict(items)


def _outcome(fn: Any, config: dict[str, Any]) -> Any:
    try:
        return fn(config)
    except CredentialsError as exc:
        return type(exc)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(proof_configs())
def test_proof_config_template_equals_pyld(config: dict[str, Any]) -> None:
    assert _outcome(canonize_proof_config, config) == _outcome(canonize_rdfc, config)


def _config(**values: Any) -> dict[str, Any]:
    config = {
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-rdfc-2022",
        "created": "2023-02-24T23:36:38Z",
        "verificationMethod": "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
                              "#z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2",
        "proofPurpose": "assertionMethod",
        "@context": [CREDENTIALS_V2],
    }
    config.update(values)
    return config


@pytest.mark.parametrize("config", [
    pytest.param(_config(), id="plain"),
    pytest.param(_config(challenge="", domain=""), id="empty-strings"),
    pytest.param(_config(challenge='a "quoted" \\ value\nnext'), id="escapes"),
    pytest.param(_config(domain="b\u00fccher.example \U0001f50b"), id="non-ascii"),
    pytest.param(_config(verificationMethod="https://example.com/keys/1"), id="https"),
    pytest.param(_config(**{"@context": [CREDENTIALS_V2, BATTERY_V1]}), id="battery-context"),
])
def test_proof_config_examples(config: dict[str, Any]) -> None:
    assert canonize_proof_config(config) == canonize_rdfc(config)


@pytest.mark.parametrize("vm", ["bp:key-1", "xsd:key-1"])
def test_proof_config_compact_iri_verification_method(vm: str) -> None:
    """The battery context defines the prefixes ``bp`` and ``xsd``; JSON-LD expands a
    verificationMethod such as ``bp:key-1`` (it is ``@type: @id``) to a full IRI, so the
    template must not copy it verbatim."""
    config = _config(verificationMethod=vm, **{"@context": [CREDENTIALS_V2, BATTERY_V1]})
    assert canonize_proof_config(config) == canonize_rdfc(config)


@pytest.mark.parametrize(("name", "value"), [
    ("challenge", "bpc-placeholder-domain"),
    ("created", "urn:bpc-placeholder:verification-method"),
    ("challenge", "bpc-placeholder-nonce"),
])
def test_proof_config_value_naming_another_placeholder(name: str, value: str) -> None:
    """A value that spells another field's placeholder must stay as given."""
    config = _config(**{name: value, "domain": "example.org", "nonce": "n"})
    assert canonize_proof_config(config) == canonize_rdfc(config)
