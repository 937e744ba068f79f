"""SMS text encoding (P3): GSM 03.38 and UCS-2, what a text costs in segments, splitting that
never cuts an escape pair or a surrogate pair, concatenation headers, and decoding of replies.

Pure: no I/O. GSM-7 payloads are unpacked (one septet per octet), as SMSCs expect for SMPP
data_coding 0; packing into 7 bits is the SMSC's job.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

GSM7 = "GSM-7"
UCS2 = "UCS-2"

DATA_CODING_GSM7 = 0x00
DATA_CODING_UCS2 = 0x08

# The user data of one SMS is 140 octets: 160 septets, or 70 UTF-16 code units.
_PAYLOAD_OCTETS = 140
_ESCAPE = 0x1B

# GSM 03.38 basic table, code 0x00 to 0x7F. 0x1B is the escape to the extension table and has
# no character of its own (a placeholder keeps the positions right and is left out below).
_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# GSM 03.38 extension table: each is sent as escape + this code, and costs two septets.
_EXTENSION_TABLE = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}

_GSM7_ENCODE: dict[str, bytes] = {
    char: bytes((code,)) for code, char in enumerate(_BASIC_TABLE) if code != _ESCAPE
}
_GSM7_ENCODE.update({char: bytes((_ESCAPE, code)) for char, code in _EXTENSION_TABLE.items()})
_BASIC_DECODE = dict(enumerate(_BASIC_TABLE))
# the same for whole texts at C speed: each character to its octets (as latin-1 code points) for
# str.translate, and what no GSM 03.38 table has
_GSM7_TRANSLATE = {ord(char): code.decode("latin-1") for char, code in _GSM7_ENCODE.items()}
_NOT_GSM7 = re.compile("[^" + "".join(re.escape(char) for char in _GSM7_ENCODE) + "]")
_EXTENSION_DECODE = {code: char for char, code in _EXTENSION_TABLE.items()}

# Characters that often arrive from word processors and have a GSM-7 twin. Shown to the editor
# of a text as a suggestion; never replaced silently.
LOOKALIKES: dict[str, str] = {
    "\u2018": "'",  # left single quotation mark
    "\u2019": "'",  # right single quotation mark, the typographic apostrophe
    "\u201a": "'",  # single low-9 quotation mark
    "\u201c": '"',  # left double quotation mark
    "\u201d": '"',  # right double quotation mark
    "\u201e": '"',  # double low-9 quotation mark, as in Norwegian and Danish typography
    "\u00ab": '"',  # «
    "\u00bb": '"',  # »
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2212": "-",  # minus sign
    "\u2026": "...",  # horizontal ellipsis
    "\u00a0": " ",  # no-break space
    "\u202f": " ",  # narrow no-break space
    "\u200b": "",  # zero-width space
    "\u00ad": "",  # soft hyphen
    "\t": " ",
}


@dataclass(frozen=True)
class TextCost:
    """What a text costs: its encoding, its length in that encoding's units, and segments."""

    encoding: str  # GSM7 or UCS2
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    per_segment: int  # units that fit in each segment at this segment count
    forcing_ucs2: tuple[str, ...]  # characters outside GSM 03.38, each once, in text order


@dataclass(frozen=True)
class Segments:
    """A text ready to send: one payload per SMS, without the concatenation header."""

    encoding: str
    data_coding: int  # SMPP data_coding: 0x00 GSM default alphabet, 0x08 UCS-2
    parts: tuple[bytes, ...]
    wide_reference: bool = False  # sized for the 16-bit reference header (``udh16``)

    @property
    def concatenated(self) -> bool:
        """Whether each part needs a UDH (and the UDHI bit 0x40 in esm_class)."""
        return len(self.parts) > 1

    def short_messages(self, reference: int) -> tuple[bytes, ...]:
        """The parts as sent: alone when there is one, else each behind its concatenation UDH
        (8-bit reference, or 16-bit when split with ``wide_reference``)."""
        if not self.concatenated:
            return self.parts
        header = udh16 if self.wide_reference else udh
        total = len(self.parts)
        return tuple(header(reference, total, seq) + part for seq, part in enumerate(self.parts, 1))


@dataclass(frozen=True)
class ConcatInfo:
    """The concatenation header of one part of a long inbound message."""

    reference: int
    total: int
    sequence: int


def is_gsm7(char: str) -> bool:
    """Whether a character is in the GSM 03.38 basic or extension table."""
    return char in _GSM7_ENCODE


def lookalike(char: str) -> str | None:
    """The GSM-7 text a common typographic character could be written as, if there is one."""
    return LOOKALIKES.get(char)


def encode_gsm7(text: str) -> bytes:
    """Unpacked GSM 03.38: one septet per octet, 0x1B before each extension character."""
    try:
        return b"".join(_GSM7_ENCODE[char] for char in text)
    except KeyError as missing:
        raise ValueError(f"character {missing.args[0]!r} is not in GSM 03.38") from None


def decode_gsm7(data: bytes) -> str:
    """Unpacked GSM 03.38 back to text.

    An escape before a code the extension table lacks shows the basic character, as the
    standard tells phones to do; a dangling escape at the end is dropped.
    """
    out: list[str] = []
    escaped = False
    for octet in data:
        if octet > 0x7F:
            raise ValueError(f"octet 0x{octet:02x} is not a septet")
        if escaped:
            out.append(_EXTENSION_DECODE.get(octet) or _basic_char(octet))
            escaped = False
        elif octet == _ESCAPE:
            escaped = True
        else:
            out.append(_BASIC_DECODE[octet])
    return "".join(out)


def _basic_char(octet: int) -> str:
    # Escape escape is reserved for a further table; the standard says to show a space.
    return " " if octet == _ESCAPE else _BASIC_DECODE[octet]


def encode_ucs2(text: str) -> bytes:
    """UTF-16 big-endian, as SMPP data_coding 8 carries it (characters beyond the BMP included)."""
    try:
        return text.encode("utf-16-be")
    except UnicodeEncodeError:
        raise ValueError("text contains a lone surrogate and cannot be sent") from None


def forcing_ucs2(text: str) -> tuple[str, ...]:
    """The characters that keep a text out of GSM-7: each once, in order of first appearance."""
    return tuple(dict.fromkeys(char for char in text if char not in _GSM7_ENCODE))


def segment_limits(encoding: str, *, wide_reference: bool = False) -> tuple[int, int]:
    """Units in a single SMS and in each part of a concatenated one: (160, 153) for GSM-7 and
    (70, 67) for UCS-2 with an 8-bit reference; (160, 152) and (70, 66) with a 16-bit one."""
    header = 7 if wide_reference else 6
    if encoding == GSM7:
        return _PAYLOAD_OCTETS * 8 // 7, (_PAYLOAD_OCTETS - header) * 8 // 7
    if encoding == UCS2:
        return _PAYLOAD_OCTETS // 2, (_PAYLOAD_OCTETS - header) // 2
    raise ValueError(f"unknown encoding {encoding!r}")


def cost(text: str, *, wide_reference: bool = False) -> TextCost:
    """How a text will be sent and how many SMS it takes; for editors and for billing."""
    encoding, units, sizes = _measure(text)
    single, multi = segment_limits(encoding, wide_reference=wide_reference)
    if units <= single:
        return TextCost(encoding, units, 1, single, forcing_ucs2(text))
    segments = sum(1 for _ in _cut(sizes, multi))
    return TextCost(encoding, units, segments, multi, forcing_ucs2(text))


def split(text: str, *, wide_reference: bool = False) -> Segments:
    """The payloads to send, each within its segment's limit; a text that fits one SMS (the
    empty text too) is one part without a header. Cuts fall between characters only, so an
    escape pair or a surrogate pair always stays in one part."""
    if _NOT_GSM7.search(text) is None:  # GSM-7, the usual case: no per-character Python work
        encoded = text.translate(_GSM7_TRANSLATE).encode("latin-1")
        single, multi = segment_limits(GSM7, wide_reference=wide_reference)
        parts = (encoded,) if len(encoded) <= single else tuple(_cut_septets(encoded, multi))
        return Segments(GSM7, DATA_CODING_GSM7, parts, wide_reference)
    encoding, units, sizes = _measure(text)
    encoded = encode_gsm7(text) if encoding == GSM7 else encode_ucs2(text)
    data_coding = DATA_CODING_GSM7 if encoding == GSM7 else DATA_CODING_UCS2
    single, multi = segment_limits(encoding, wide_reference=wide_reference)
    if units <= single:
        return Segments(encoding, data_coding, (encoded,), wide_reference)
    octets_per_unit = 1 if encoding == GSM7 else 2
    parts = tuple(
        encoded[start * octets_per_unit : end * octets_per_unit]
        for start, end in _cut(sizes, multi)
    )
    return Segments(encoding, data_coding, parts, wide_reference)


def _measure(text: str) -> tuple[str, int, list[int]]:
    """The encoding a text needs and each character's size in that encoding's units."""
    if all(char in _GSM7_ENCODE for char in text):
        sizes = [len(_GSM7_ENCODE[char]) for char in text]
        return GSM7, sum(sizes), sizes
    encode_ucs2(text)  # refuses lone surrogates before anything is counted
    sizes = [2 if ord(char) > 0xFFFF else 1 for char in text]
    return UCS2, sum(sizes), sizes


def _cut(sizes: list[int], limit: int) -> Iterator[tuple[int, int]]:
    """Greedy cut of indivisible items into runs of at most ``limit`` units, as unit offsets
    (start, end). Greedy is optimal here: the items keep their order and every run has the
    same capacity, so no cut gives fewer runs."""
    start = end = 0
    for size in sizes:
        if end + size - start > limit:
            yield start, end
            start = end
        end += size
    yield start, end


def _cut_septets(encoded: bytes, limit: int) -> Iterator[bytes]:
    """Greedy cut of unpacked GSM-7 into parts of at most ``limit`` octets, never between an
    escape and the code it escapes (an escape octet is only ever the first of a pair)."""
    start = 0
    while len(encoded) - start > limit:
        end = start + limit
        if encoded[end - 1] == _ESCAPE:
            end -= 1
        yield encoded[start:end]
        start = end
    yield encoded[start:]


def udh(reference: int, total: int, sequence: int) -> bytes:
    """Concatenation UDH with an 8-bit reference: 05 00 03 ref total seq."""
    _check_concat(reference, 0xFF, total, sequence)
    return bytes((0x05, 0x00, 0x03, reference, total, sequence))


def udh16(reference: int, total: int, sequence: int) -> bytes:
    """Concatenation UDH with a 16-bit reference: 06 08 04 ref-high ref-low total seq.
    Use with ``split(..., wide_reference=True)``: this header is one octet longer."""
    _check_concat(reference, 0xFFFF, total, sequence)
    return bytes((0x06, 0x08, 0x04, reference >> 8, reference & 0xFF, total, sequence))


def _check_concat(reference: int, max_reference: int, total: int, sequence: int) -> None:
    if not 0 <= reference <= max_reference:
        raise ValueError(f"reference must be 0..{max_reference}")
    if not 1 <= total <= 0xFF:
        raise ValueError("total must be 1..255")
    if not 1 <= sequence <= total:
        raise ValueError("sequence must be 1..total")


def parse_udh(short_message: bytes) -> tuple[ConcatInfo | None, bytes]:
    """Split an inbound short_message whose esm_class has UDHI (0x40) into its concatenation
    info (8- or 16-bit reference; None when the header has neither) and the payload after the
    header. Raises ValueError when the header is longer than the message."""
    if not short_message:
        raise ValueError("empty message cannot carry a user data header")
    header_end = 1 + short_message[0]
    if header_end > len(short_message):
        raise ValueError("user data header is longer than the message")
    header, payload = short_message[1:header_end], short_message[header_end:]
    info = None
    pos = 0
    while pos + 2 <= len(header):
        tag, length = header[pos], header[pos + 1]
        value = header[pos + 2 : pos + 2 + length]
        if len(value) < length:
            break  # a truncated element: keep what was found before it
        if tag == 0x00 and length == 3:
            info = ConcatInfo(reference=value[0], total=value[1], sequence=value[2])
        elif tag == 0x08 and length == 4:
            info = ConcatInfo(reference=value[0] << 8 | value[1], total=value[2], sequence=value[3])
        pos += 2 + length
    return info, payload


# SMPP data_coding values read with a Python codec (0 and 8, and the GSM 03.38 groups, come
# first): IA5/ASCII, Latin-1, JIS, Cyrillic, Latin/Hebrew, ISO-2022-JP.
_CODECS = {
    0x01: "ascii",
    0x03: "latin-1",
    0x05: "shift_jis",
    0x06: "iso8859_5",
    0x07: "iso8859_8",
    0x0A: "iso2022_jp",
}


def decode(data: bytes, data_coding: int) -> str:
    """Text of an inbound (MO) payload by its SMPP data_coding. Never raises: replies are read
    by people and by the STOP matcher, and an odd octet must not lose the rest of the text."""
    alphabet = _alphabet(data_coding)
    if alphabet == GSM7:
        return _decode_default_alphabet(data)
    codec = "utf-16-be" if alphabet == UCS2 else _CODECS.get(data_coding)
    if codec is not None:
        return data.decode(codec, errors="replace")
    try:  # 8-bit data or an unknown coding: best effort
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _decode_default_alphabet(data: bytes) -> str:
    try:
        return decode_gsm7(data)
    except ValueError:
        # Some SMSCs' "default alphabet" is Latin-1; octets above 0x7F are the tell.
        return data.decode("latin-1")


def _alphabet(data_coding: int) -> str | None:
    """GSM7 or UCS2 when data_coding says so, also through the GSM 03.38 coding groups."""
    if data_coding == DATA_CODING_GSM7 or 0xC0 <= data_coding <= 0xDF:
        return GSM7  # default alphabet, or message-waiting groups that use it
    if data_coding == DATA_CODING_UCS2 or 0xE0 <= data_coding <= 0xEF:
        return UCS2
    if 0xF0 <= data_coding <= 0xFF:
        return None if data_coding & 0x04 else GSM7  # bit 2: 8-bit data, else default alphabet
    if 0x10 <= data_coding <= 0x1F or 0x40 <= data_coding <= 0x5F:
        # General data coding groups, uncompressed: bits 3-2 name the alphabet.
        return {0: GSM7, 2: UCS2}.get(data_coding >> 2 & 0x03)
    return None
