"""Voucher images: the QR code (PNG and SVG) shows exactly the modules of an
error-correction-M symbol of the data, and the Code 128 barcode decodes back to the code."""

from __future__ import annotations

import re
import struct
import uuid
import zlib
from xml.etree import ElementTree

import pytest
import segno
from hypothesis import given, settings
from hypothesis import strategies as st

from vouchers.services.codes import ALPHABET, CodeInvalid, code_check_symbol, code_format
from vouchers.services.images import (
    CODE128_PATTERNS,
    CODE128_STOP,
    barcode_svg,
    code128b_values,
    code128b_widths,
    qr_png,
    qr_svg,
)
from vouchers.services.tokens import qr_token_issue

SVG = "{http://www.w3.org/2000/svg}"
SCALE, BORDER = 8, 4
CODES = st.lists(st.sampled_from(ALPHABET), min_size=15, max_size=15).map(
    lambda body: "".join(body) + code_check_symbol("".join(body))
)


@pytest.fixture
def token() -> str:
    return qr_token_issue(voucher_id=uuid.uuid4(), member_id=uuid.uuid4()).token


def parse_svg(svg: str) -> ElementTree.Element:
    # Our own output, not untrusted input: the standard parser is fine here.
    return ElementTree.fromstring(svg)  # noqa: S314


def reference_matrix(data: str) -> list[list[int]]:
    return [list(row) for row in segno.make(data, error="m", boost_error=False, micro=False).matrix]


# --- a minimal PNG reader (greyscale, any filter) -----------------------------------------------


def png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = [], 8
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind, body = png[offset + 4 : offset + 8], png[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", png[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks.append((kind, body))
        offset += 12 + length
    return chunks


def png_pixels(png: bytes) -> list[list[int]]:
    """Rows of pixel values (0 black ... 1 white) of a greyscale PNG of bit depth 1 or 8."""
    chunks = png_chunks(png)
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert colour == 0 and depth in (1, 8) and interlace == 0
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = (width * depth + 7) // 8
    rows, previous, offset = [], bytearray(stride), 0
    for _ in range(height):
        kind, line = raw[offset], bytearray(raw[offset + 1 : offset + 1 + stride])
        offset += 1 + stride
        for i in range(stride):
            left = line[i - 1] if i else 0
            up, up_left = previous[i], previous[i - 1] if i else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                predictor = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
                line[i] = (line[i] + predictor) & 0xFF
            else:
                assert kind == 0
        if depth == 1:
            rows.append([(line[x // 8] >> (7 - x % 8)) & 1 for x in range(width)])
        else:
            rows.append([1 if value >= 128 else 0 for value in line[:width]])
        previous = line
    assert offset == len(raw)
    return rows


def modules_from_pixels(rows: list[list[int]], size: int) -> list[list[int]]:
    """Dark modules (1) sampled at each module's centre, inside the quiet zone."""
    centre = SCALE // 2
    return [
        [1 - rows[(BORDER + r) * SCALE + centre][(BORDER + c) * SCALE + centre] for c in range(size)]
        for r in range(size)
    ]


def error_level(matrix: list[list[int]]) -> str:
    """The error correction level from the format information beside the top-left finder
    (read in the order ISO/IEC 18004 gives, as zxing's reader does)."""
    positions = [(8, x) for x in range(6)] + [(8, 7), (8, 8), (7, 8)] + [(y, 8) for y in range(5, -1, -1)]
    bits = 0
    for row, col in positions:
        bits = (bits << 1) | matrix[row][col]
    data = (bits ^ 0x5412) >> 10
    return {0: "M", 1: "L", 2: "H", 3: "Q"}[data >> 3]


# --- QR PNG -------------------------------------------------------------------------------------


def test_the_qr_png_is_a_valid_png_of_the_expected_size(token):
    png = qr_png(token)
    size = len(reference_matrix(token))
    width, height = struct.unpack(">II", png_chunks(png)[0][1][:8])
    assert width == height == (size + 2 * BORDER) * SCALE
    assert 400 <= width <= 600  # comfortable on a phone screen


def test_the_qr_png_shows_exactly_the_modules_of_an_m_level_symbol(token):
    rows = png_pixels(qr_png(token))
    matrix = reference_matrix(token)
    assert modules_from_pixels(rows, len(matrix)) == matrix
    assert error_level(matrix) == "M"
    # the quiet zone is white all round
    quiet = BORDER * SCALE
    assert all(pixel == 1 for row in rows[:quiet] + rows[-quiet:] for pixel in row)
    assert all(row[x] == 1 for row in rows for x in [*range(quiet), *range(len(row) - quiet, len(row))])


@pytest.mark.parametrize("level", ["L", "M", "Q", "H"])
def test_the_format_reader_tells_the_levels_apart(level):
    # keeps the M assertion above honest: the reader distinguishes every level
    matrix = [list(row) for row in segno.make("voucher", error=level, boost_error=False, micro=False).matrix]
    assert error_level(matrix) == level


# --- QR SVG -------------------------------------------------------------------------------------


def modules_from_svg_path(d: str, size: int) -> list[list[int]]:
    """Dark modules drawn by segno's stroke path (``M``/``m`` moves, ``h`` runs)."""
    matrix = [[0] * size for _ in range(size)]
    x = y = 0.0
    for command, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", d):
        if command == "M":
            x, y = float(a), float(b)
        elif command == "m":
            x, y = x + float(a), y + float(b)
        else:
            for column in range(int(x), int(x + float(a))):
                matrix[int(y) - BORDER][column - BORDER] = 1
            x += float(a)
    return matrix


def test_the_qr_svg_is_well_formed_and_shows_the_same_symbol(token):
    svg = qr_svg(token)
    assert not svg.startswith("<?xml")
    root = parse_svg(svg)
    assert root.tag == f"{SVG}svg"
    matrix = reference_matrix(token)
    assert int(root.get("width")) == int(root.get("height")) == (len(matrix) + 2 * BORDER) * SCALE
    paths = {p.get("class"): p for p in root.iter(f"{SVG}path")}
    assert paths["qrline"].get("stroke") in {"#000", "#000000"}
    background = next(p for p in root.iter(f"{SVG}path") if p.get("fill"))
    assert background.get("fill") in {"#fff", "#ffffff"}  # opaque: readable in dark mode
    assert modules_from_svg_path(paths["qrline"].get("d"), len(matrix)) == matrix


@pytest.mark.parametrize("data", ["", "x" * 513])
def test_qr_data_must_be_present_and_bounded(data):
    with pytest.raises(ValueError, match="QR data"):
        qr_png(data)
    with pytest.raises(ValueError, match="QR data"):
        qr_svg(data)


# --- Code 128 -----------------------------------------------------------------------------------


def test_the_code128_table_is_well_formed():
    assert len(CODE128_PATTERNS) == 106 and len(set(CODE128_PATTERNS)) == 106
    for pattern in CODE128_PATTERNS:
        widths = [int(w) for w in pattern]
        assert len(widths) == 6 and sum(widths) == 11
        assert sum(widths[0::2]) % 2 == 0  # Code 128's parity: bar modules are even
        assert all(1 <= w <= 4 for w in widths)
    assert CODE128_STOP == "2331112" and sum(map(int, CODE128_STOP)) == 13
    assert CODE128_STOP[:6] not in CODE128_PATTERNS


def test_a_reference_encoding_is_reproduced():
    # "123" in set B, as published (e.g. barcode4j's Code128Test): start B, "1" (17),
    # "2" (18), "3" (19), check (104 + 17 + 2*18 + 3*19) % 103 = 8, stop.
    assert code128b_values("123") == [104, 17, 18, 19, 8]
    assert code128b_widths("123") == "211214" + "123221" + "223211" + "221132" + "132212" + "2331112"


@pytest.mark.parametrize("text", ["", "é", "A\tB", "\x7f"])
def test_code128b_refuses_what_set_b_cannot_hold(text):
    with pytest.raises(ValueError, match="set B"):
        code128b_values(text)


def decode_barcode(svg: str) -> tuple[str, str]:
    """(the encoded text, the printed label) read back from the SVG's bar positions."""
    root = parse_svg(svg)
    width = int(root.get("width"))
    bars = sorted((int(r.get("x")), int(r.get("width"))) for g in root.iter(f"{SVG}g") for r in g.iter(f"{SVG}rect"))
    module = min(w for _, w in bars)  # the narrowest bar is one module
    assert all(x % module == 0 and w % module == 0 for x, w in bars)
    assert bars[0][0] // module >= 10  # quiet zones
    assert (width - bars[-1][0] - bars[-1][1]) // module >= 10
    runs = []
    for (x, w), following in zip(bars, [*bars[1:], None], strict=True):
        runs.append(w // module)
        if following:
            runs.append((following[0] - x - w) // module)
    assert "".join(map(str, runs[-7:])) == CODE128_STOP
    table = {pattern: value for value, pattern in enumerate(CODE128_PATTERNS)}
    values = [table["".join(map(str, runs[i : i + 6]))] for i in range(0, len(runs) - 7, 6)]
    start, *data, check = values
    assert start == 104
    assert check == (start + sum(i * v for i, v in enumerate(data, start=1))) % 103
    label = "".join(root.find(f"{SVG}text").itertext())
    return "".join(chr(v + 32) for v in data), label


@settings(derandomize=True, max_examples=200, deadline=None)
@given(CODES)
def test_the_barcode_decodes_back_to_the_code(code):
    text, label = decode_barcode(barcode_svg(code))
    assert text == code
    assert label == code_format(code)


def test_the_barcode_accepts_the_grouped_code_and_lower_case():
    code = "7KQ2M9XD4RTBHW3" + code_check_symbol("7KQ2M9XD4RTBHW3")
    assert barcode_svg(code_format(code).lower()) == barcode_svg(code)


def test_the_barcode_refuses_an_invalid_code():
    code = "7KQ2M9XD4RTBHW3" + code_check_symbol("7KQ2M9XD4RTBHW3")
    typo = code[:-1] + ("2" if code[-1] != "2" else "3")
    with pytest.raises(CodeInvalid):
        barcode_svg(typo)
