"""SMS encoding properties (P3), checked against independent oracles: the `gsm0338` codec from
PyPI for GSM 03.38, Python's own UTF-16 codec for UCS-2, and the 140-octet user data limit of
an SMS for the segment sizes."""

from __future__ import annotations

import math
import unicodedata

import gsm0338
import gsm0338.charset
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tilfreds.sms.encoding import (
    GSM7,
    UCS2,
    ConcatInfo,
    Segments,
    cost,
    decode,
    decode_gsm7,
    encode_gsm7,
    is_gsm7,
    parse_udh,
    segment_limits,
    split,
    udh,
    udh16,
)

ORACLE = gsm0338.Codec()
# Other helpers' tests share this 2-core machine: no timing in assertions, hypothesis' included.
untimed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
thorough = settings(untimed, max_examples=400)
ESCAPE = "\x1b"  # the oracle maps it to itself; it is no character to send (see the examples)


def _oracle_chars(table: dict[int, str]) -> list[str]:
    """The characters of one of the oracle's tables (it names them by Unicode name)."""
    return [unicodedata.lookup(name) for name in table.values() if name != "ESCAPE"]


BASIC = _oracle_chars(gsm0338.charset.BASIC_CHARACTER_SET)
EXTENSION = _oracle_chars(gsm0338.charset.BASIC_CHARACTER_SET_EXTENSION)
# Characters that are often typed and are not in GSM 03.38, and some beyond the BMP.
FOREIGN = [
    *"áíóúýêâôçðþšžõ\u2019\u201c\u2013\u2026\u00a0",
    "\U0001f600",
    "\U0001f44d",
    "\U0001f1f3",
    "\U00020000",
]

gsm_texts = st.text(
    alphabet=st.one_of(st.sampled_from(BASIC), st.sampled_from(EXTENSION)), max_size=700
)
long_gsm_texts = st.lists(
    st.sampled_from(["a", "ø", "€", "[", "Hei på deg ", "{x}"]), min_size=20, max_size=300
).map("".join)
long_ucs2_texts = st.lists(
    st.sampled_from(["a", "ð", "\U0001f600", "\U0001f44d\U0001f3fd", "Hei på deg ", "\U00020000"]),
    min_size=20,
    max_size=150,
).map("".join)
mixed_texts = st.text(
    alphabet=st.one_of(
        st.sampled_from(BASIC),
        st.sampled_from(EXTENSION),
        st.sampled_from(FOREIGN),
        st.characters(exclude_categories=["Cs"]),
    ),
    max_size=400,
)
any_texts = st.one_of(gsm_texts, long_gsm_texts, long_ucs2_texts, mixed_texts)


def _oracle_gsm7(text: str) -> bytes | None:
    if ESCAPE in text:
        return None
    try:
        return ORACLE.encode(text)[0]
    except UnicodeEncodeError:
        return None


def _units(text: str, encoding: str) -> int:
    if encoding == GSM7:
        encoded = _oracle_gsm7(text)
        assert encoded is not None
        return len(encoded)
    return len(text.encode("utf-16-be")) // 2


def _decode_part(part: bytes, segments: Segments) -> str:
    if segments.encoding == GSM7:
        text: str = ORACLE.decode(part)[0]
        return text
    return part.decode("utf-16-be")


def test_p3_the_alphabet_matches_the_oracle_tables() -> None:
    assert len(BASIC) == 127 and len(EXTENSION) == 10
    assert all(is_gsm7(char) for char in BASIC + EXTENSION)


@untimed
@given(st.characters())
def test_p3_a_character_is_gsm7_exactly_when_the_oracle_can_encode_it(char: str) -> None:
    assert is_gsm7(char) == (_oracle_gsm7(char) is not None)


@untimed
@given(gsm_texts)
@example("a" * 152 + "€")
def test_p3_encode_gsm7_agrees_with_the_oracle_and_round_trips(text: str) -> None:
    encoded = encode_gsm7(text)
    assert encoded == _oracle_gsm7(text)
    assert decode_gsm7(encoded) == text
    assert decode(encoded, 0x00) == text


@untimed
@given(any_texts)
def test_p3_a_text_is_gsm7_exactly_when_the_oracle_can_encode_all_of_it(text: str) -> None:
    result = cost(text)
    assert (result.encoding == GSM7) == (_oracle_gsm7(text) is not None)
    assert result.units == _units(text, result.encoding)
    rejected = [char for char in text if _oracle_gsm7(char) is None]
    assert list(result.forcing_ucs2) == list(dict.fromkeys(rejected))


@thorough
@given(any_texts, st.booleans())
@example("a" * 152 + "€" + "b" * 10, False)
@example("ç" + "a" * 65 + "\U0001f600" * 3, False)
@example("€" * 153, True)
def test_p3_split_parts_join_to_the_text_within_limits_and_cut_no_pair(
    text: str, wide: bool
) -> None:
    segments = split(text, wide_reference=wide)
    single, multi = segment_limits(segments.encoding, wide_reference=wide)
    unit = 1 if segments.encoding == GSM7 else 2
    assert segments.data_coding == (0x00 if segments.encoding == GSM7 else 0x08)
    # Each part decodes alone, so no part begins or ends inside an escape or surrogate pair.
    assert "".join(_decode_part(part, segments) for part in segments.parts) == text
    limit = single if len(segments.parts) == 1 else multi
    for part in segments.parts:
        assert len(part) <= limit * unit
        if segments.encoding == GSM7:
            assert not part.endswith(b"\x1b")
        elif part:
            assert not 0xDC <= part[0] <= 0xDF  # no lone low surrogate first
            assert not 0xD8 <= part[-2] <= 0xDB  # no lone high surrogate last
    assert cost(text, wide_reference=wide).segments == len(segments.parts)


@thorough
@given(any_texts)
def test_p3_split_uses_no_more_parts_than_needed(text: str) -> None:
    """Every part but the last is full: the next character would not have fitted."""
    segments = split(text)
    _, multi = segment_limits(segments.encoding)
    unit = 1 if segments.encoding == GSM7 else 2
    rest = text
    for part, following in zip(segments.parts, segments.parts[1:], strict=False):
        rest = rest[len(_decode_part(part, segments)) :]
        assert following  # never an empty part in a concatenated message
        next_char_units = _units(rest[0], segments.encoding)
        assert len(part) // unit + next_char_units > multi


@untimed
@given(st.text(alphabet=st.sampled_from([*BASIC, "ð", "\u2019"]), max_size=700))
def test_p3_without_pairs_the_segment_count_is_the_textbook_formula(text: str) -> None:
    result = cost(text)
    single, multi = segment_limits(result.encoding)
    expected = 1 if result.units <= single else math.ceil(result.units / multi)
    assert result.segments == expected
    assert result.per_segment == (single if expected == 1 else multi)


@untimed
@given(any_texts, st.integers(0, 0xFFFF), st.booleans())
def test_p3_every_short_message_fits_140_octets_and_parses_back(
    text: str, reference: int, wide: bool
) -> None:
    segments = split(text, wide_reference=wide)
    reference = reference if wide else reference & 0xFF
    sent = segments.short_messages(reference)
    total = len(sent)
    for sequence, (message, part) in enumerate(zip(sent, segments.parts, strict=True), 1):
        header = b"" if total == 1 else message[: len(message) - len(part)]
        assert message.endswith(part)
        # GSM-7 septets are packed by the SMSC behind the header: 7 bits each.
        payload_bits = len(part) * (7 if segments.encoding == GSM7 else 8)
        assert len(header) * 8 + payload_bits <= 140 * 8
        if total > 1:
            assert parse_udh(message) == (ConcatInfo(reference, total, sequence), part)


@untimed
@given(st.integers(0, 0xFF), st.integers(1, 0xFF), st.data(), st.binary(max_size=140))
def test_p3_udh_and_parse_udh_round_trip(
    reference: int, total: int, data: st.DataObject, payload: bytes
) -> None:
    sequence = data.draw(st.integers(1, total))
    info = ConcatInfo(reference, total, sequence)
    assert parse_udh(udh(reference, total, sequence) + payload) == (info, payload)
    wide = data.draw(st.integers(0, 0xFFFF))
    assert parse_udh(udh16(wide, total, sequence) + payload) == (
        ConcatInfo(wide, total, sequence),
        payload,
    )


@untimed
@given(st.binary(max_size=200), st.integers(0, 0xFF))
def test_p3_decoding_an_inbound_message_never_raises(data: bytes, data_coding: int) -> None:
    assert isinstance(decode(data, data_coding), str)


@untimed
@given(mixed_texts)
def test_p3_what_split_sends_decodes_back_as_inbound_text(text: str) -> None:
    segments = split(text)
    assert decode(b"".join(segments.parts), segments.data_coding) == text


def test_p3_encodings_are_the_names_the_transport_reports() -> None:
    assert (GSM7, UCS2) == ("GSM-7", "UCS-2")
