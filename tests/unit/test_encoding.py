"""SMS encoding by example (P3): Nordic texts, the segment edges, escape and surrogate pairs at a
cut, concatenation headers and inbound decoding. Properties against an oracle codec live in
test_encoding_properties.py."""

from __future__ import annotations

import pytest

from tilfreds.sms.encoding import (
    DATA_CODING_GSM7,
    DATA_CODING_UCS2,
    GSM7,
    UCS2,
    ConcatInfo,
    TextCost,
    cost,
    decode,
    decode_gsm7,
    encode_gsm7,
    forcing_ucs2,
    lookalike,
    parse_udh,
    segment_limits,
    split,
    udh,
    udh16,
)

NORDIC_GSM7 = {
    "nb": "Hei Åse! Hvor fornøyd var du med besøket hos Bøgh & Sønn i dag? Svar 1-5. "
    "Svar STOPP for å reservere deg.",
    "nn": "Hei! Kor nøgd var du med hjelpa frå oss? Svar med eit tal frå 1 til 5.",
    "sv": "Hej! Hur nöjd är du med vår kundtjänst i Göteborg? Svara 1-5. Svara STOPP för att "
    "avregistrera dig.",
    "da": "Hej! Hvor tilfreds var du med Økonomi-afdelingen? Svar STOP for at framelde dig.",
    "fi": "Hei! Kuinka tyytyväinen olit palveluumme Hämeenlinnassa? Vastaa LOPETA, jos et halua "
    "viestejä.",
}


@pytest.mark.parametrize("language", sorted(NORDIC_GSM7))
def test_p3_nordic_survey_texts_are_gsm7(language: str) -> None:
    text = NORDIC_GSM7[language]
    result = cost(text)
    assert result.encoding == GSM7
    assert result.units == len(text)  # no escape characters in these
    assert result.forcing_ucs2 == ()
    assert decode_gsm7(encode_gsm7(text)) == text


@pytest.mark.parametrize("char", list("æøåÆØÅäöÄÖéÉ"))
def test_p3_nordic_letters_cost_one_septet(char: str) -> None:
    assert cost(char) == TextCost(GSM7, 1, 1, 160, ())
    assert len(encode_gsm7(char)) == 1


@pytest.mark.parametrize("char", list("^{}\\[~]|€\f"))
def test_p3_extension_characters_cost_two_septets(char: str) -> None:
    assert cost(char).units == 2
    assert encode_gsm7(char)[0] == 0x1B
    assert len(encode_gsm7(char)) == 2


@pytest.mark.parametrize(
    "char", ["\u2018", "\u2019", "\u201c", "\u201d", "\u2013", "\u2026", "\u00a0", *"áíóúýêâôçðþ"]
)
def test_p3_typographic_and_foreign_characters_force_ucs2(char: str) -> None:
    result = cost(f"Hei {char} du")
    assert result.encoding == UCS2
    assert result.forcing_ucs2 == (char,)
    with pytest.raises(ValueError, match=r"not in GSM 03\.38"):
        encode_gsm7(char)


def test_p3_the_escape_control_character_itself_forces_ucs2() -> None:
    # U+001B has no meaning of its own in GSM 03.38: sending it would start an escape pair.
    assert cost("a\x1bb").encoding == UCS2


def test_p3_forcing_characters_are_listed_once_in_order_of_first_appearance() -> None:
    text = "\u201cTakk\u201d \u2013 sa Åse\u2026 \u201cígjen\u201d \u2013 ok"
    assert forcing_ucs2(text) == ("\u201c", "\u201d", "\u2013", "\u2026", "í")
    assert cost(text).forcing_ucs2 == ("\u201c", "\u201d", "\u2013", "\u2026", "í")


def test_p3_lookalikes_are_suggested_never_substituted() -> None:
    text = "Det var \u201cbra\u201d \u2013 takk\u2026"
    assert [lookalike(c) for c in forcing_ucs2(text)] == ['"', '"', "-", "..."]
    assert lookalike("ð") is None
    assert split(text).encoding == UCS2  # the text is sent as written
    assert decode(b"".join(split(text).parts), DATA_CODING_UCS2) == text


@pytest.mark.parametrize(
    ("length", "segments", "per_segment"),
    [(0, 1, 160), (1, 1, 160), (160, 1, 160), (161, 2, 153), (306, 2, 153), (307, 3, 153)],
)
def test_p3_gsm7_segment_edges(length: int, segments: int, per_segment: int) -> None:
    text = "ø" * length
    assert cost(text) == TextCost(GSM7, length, segments, per_segment, ())
    parts = split(text).parts
    assert len(parts) == segments
    assert b"".join(parts) == encode_gsm7(text)


@pytest.mark.parametrize(
    ("length", "segments", "per_segment"),
    [(1, 1, 70), (70, 1, 70), (71, 2, 67), (134, 2, 67), (135, 3, 67)],
)
def test_p3_ucs2_segment_edges(length: int, segments: int, per_segment: int) -> None:
    text = "ð" * length
    assert cost(text) == TextCost(UCS2, length, segments, per_segment, ("ð",))
    parts = split(text).parts
    assert len(parts) == segments
    assert all(len(part) <= 2 * per_segment for part in parts)


def test_p3_escape_characters_count_double_at_the_single_segment_edge() -> None:
    assert cost("a" * 158 + "€").segments == 1  # 160 septets
    assert cost("a" * 159 + "€").segments == 2  # 161 septets


def test_p3_an_escape_pair_at_a_segment_boundary_moves_whole_to_the_next_part() -> None:
    text = "a" * 152 + "€" + "b" * 10  # the euro's escape would be septet 153, its code 154
    segments = split(text)
    assert [len(part) for part in segments.parts] == [152, 12]
    assert segments.parts[0][-1] != 0x1B
    assert segments.parts[1][:2] == b"\x1b\x65"
    assert "".join(decode_gsm7(part) for part in segments.parts) == text


def test_p3_escape_pairs_that_waste_septets_can_add_a_segment() -> None:
    # 306 septets would fit 2 x 153 by count, but 153 is odd: each part holds 76 pairs.
    text = "€" * 153
    assert cost(text).units == 306
    assert cost(text).segments == 3
    assert [len(part) for part in split(text).parts] == [152, 152, 2]


def test_p3_an_emoji_at_a_segment_boundary_is_never_split() -> None:
    text = "ç" + "a" * 65 + "\U0001f600" + "b" * 10  # the emoji would take units 67 and 68
    assert cost(text).units == 78
    segments = split(text)
    assert segments.data_coding == DATA_CODING_UCS2
    assert [len(part) for part in segments.parts] == [132, 24]
    assert segments.parts[1][:4] == "\U0001f600".encode("utf-16-be")
    assert "".join(part.decode("utf-16-be") for part in segments.parts) == text


def test_p3_emoji_count_two_units_at_the_single_segment_edge() -> None:
    assert cost("\U0001f600" * 35) == TextCost(UCS2, 70, 1, 70, ("\U0001f600",))
    assert cost("a" + "\U0001f600" * 35).segments == 2


def test_p3_a_single_segment_needs_no_header() -> None:
    segments = split("Takk for svaret!")
    assert segments.parts == (encode_gsm7("Takk for svaret!"),)
    assert segments.data_coding == DATA_CODING_GSM7
    assert not segments.concatenated
    assert segments.short_messages(reference=7) == segments.parts


def test_p3_concatenated_parts_carry_reference_total_and_sequence() -> None:
    segments = split("x" * 200)
    assert segments.concatenated
    first, second = segments.short_messages(reference=0xA7)
    assert first[:6] == bytes.fromhex("050003a70201")
    assert second[:6] == bytes.fromhex("050003a70202")
    assert parse_udh(second) == (ConcatInfo(0xA7, 2, 2), segments.parts[1])


def test_p3_a_16_bit_reference_leaves_one_unit_less_per_part() -> None:
    assert segment_limits(GSM7, wide_reference=True) == (160, 152)
    assert segment_limits(UCS2, wide_reference=True) == (70, 66)
    assert cost("x" * 305).segments == 2
    assert cost("x" * 305, wide_reference=True).segments == 3
    segments = split("x" * 200, wide_reference=True)
    first = segments.short_messages(reference=0x1234)[0]
    assert first[:7] == bytes.fromhex("0608041234" + "0201")
    assert parse_udh(first) == (ConcatInfo(0x1234, 2, 1), segments.parts[0])


def test_p3_udh_refuses_values_outside_its_fields() -> None:
    assert udh(0, 1, 1) == bytes.fromhex("050003000101")
    assert udh16(0xFFFF, 255, 255) == bytes.fromhex("060804ffffffff")
    for args in [(256, 2, 1), (-1, 2, 1), (1, 0, 1), (1, 256, 1), (1, 2, 0), (1, 2, 3)]:
        with pytest.raises(ValueError):
            udh(*args)
    with pytest.raises(ValueError):
        udh16(0x10000, 2, 1)


def test_p3_parse_udh_skips_other_elements_and_reports_no_concatenation_when_absent() -> None:
    ports = bytes.fromhex("0504" + "0b841234")  # application port addressing, 16-bit
    assert parse_udh(bytes([len(ports)]) + ports + b"hi") == (None, b"hi")
    header = ports + bytes.fromhex("00030c0301")
    assert parse_udh(bytes([len(header)]) + header + b"hi") == (ConcatInfo(12, 3, 1), b"hi")


def test_p3_parse_udh_refuses_a_header_longer_than_the_message() -> None:
    with pytest.raises(ValueError):
        parse_udh(bytes.fromhex("0500030c"))
    with pytest.raises(ValueError):
        parse_udh(b"")


def test_p3_lone_surrogates_cannot_be_sent() -> None:
    with pytest.raises(ValueError, match="lone surrogate"):
        split("abc\ud800")
    with pytest.raises(ValueError, match="lone surrogate"):
        cost("\udc00")


@pytest.mark.parametrize(
    ("data", "data_coding", "text"),
    [
        (encode_gsm7("Nei takk, STOPP {ø}"), 0x00, "Nei takk, STOPP {ø}"),
        (b"STOP please", 0x01, "STOP please"),
        ("Stopp, tack så mycket".encode("latin-1"), 0x03, "Stopp, tack så mycket"),
        ("Stopp \U0001f64f ð".encode("utf-16-be"), 0x08, "Stopp \U0001f64f ð"),
        (encode_gsm7("Å stopp"), 0xF1, "Å stopp"),  # GSM 03.38 group F, default alphabet
        ("Lopeta".encode("utf-16-be"), 0x18, "Lopeta"),  # general group, UCS-2
        ("Nej tack, för dyrt".encode(), 0x04, "Nej tack, för dyrt"),  # 8-bit data: best effort
        (
            "Nej, ødelagt".encode("latin-1"),
            0x00,
            "Nej, ødelagt",
        ),  # an SMSC whose default is Latin-1
    ],
)
def test_p3_inbound_replies_decode_by_data_coding(data: bytes, data_coding: int, text: str) -> None:
    assert decode(data, data_coding) == text


def test_p3_decode_gsm7_follows_the_standard_for_odd_escapes() -> None:
    assert decode_gsm7(b"\x1b\x41") == "A"  # no extension character: the basic one
    assert decode_gsm7(b"a\x1b\x1bb") == "a b"  # escape escape: a space
    assert decode_gsm7(b"ab\x1b") == "ab"  # dangling escape
    with pytest.raises(ValueError):
        decode_gsm7(b"\x80")


def test_p3_a_text_of_more_than_255_parts_is_counted_but_cannot_be_sent_concatenated() -> None:
    text = "x" * (153 * 255 + 1)
    assert cost(text).segments == 256
    with pytest.raises(ValueError, match="total"):
        split(text).short_messages(reference=1)
