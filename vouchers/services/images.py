"""Images of a voucher: the rotating QR token (SVG and PNG) and a printable barcode.

QR codes use segno with error correction M, the standard 4-module quiet zone, black on
an opaque white background (a transparent background disappears on a phone in dark
mode) and 8 pixels per module, so a 165-character token (version 9, 53 modules) is a
488-pixel square that phone screens and till scanners read comfortably.

The barcode is Code 128, code set B, implemented here from the standard (ISO/IEC
15417): a start symbol, one symbol per character, a modulo-103 check symbol and the
stop pattern, with a 10-module quiet zone on each side.
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

import segno

from vouchers.services.codes import code_format, code_normalise

QR_ERROR = "m"
QR_BORDER = 4
QR_SCALE = 8
# The longest data we ever put in a QR code (a token is about 165 characters).
QR_MAX_DATA = 512

# Code 128 symbols 0-105: widths of bar, space, bar, space, bar, space (11 modules).
CODE128_PATTERNS = (
    "212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212", "221213",
    "221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221", "223211", "221132",
    "221231", "213212", "223112", "312131", "311222", "321122", "321221", "312212", "322112", "322211",
    "212123", "212321", "232121", "111323", "131123", "131321", "112313", "132113", "132311", "211313",
    "231113", "231311", "112133", "112331", "132131", "113123", "113321", "133121", "313121", "211331",
    "231131", "213113", "213311", "213131", "311123", "311321", "331121", "312113", "312311", "332111",
    "314111", "221411", "431111", "111224", "111422", "121124", "121421", "141122", "141221", "112214",
    "112412", "122114", "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111",
    "111242", "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141",
    "214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311", "113141",
    "114131", "311141", "411131", "211412", "211214", "211232",
)  # fmt: skip
CODE128_STOP = "2331112"  # the stop symbol (106) with its final 2-module bar: 13 modules
CODE128_START_B = 104
CODE128_QUIET = 10  # modules of white on each side
BARCODE_MODULE = 2  # SVG units per module
BARCODE_HEIGHT = 60
BARCODE_TEXT_HEIGHT = 18


def _qr(data: str) -> segno.QRCode:
    if not data or len(data) > QR_MAX_DATA:
        raise ValueError(f"QR data must be 1 to {QR_MAX_DATA} characters")
    # boost_error off: the level is M as specified, not whatever happens to fit.
    return segno.make(data, error=QR_ERROR, micro=False, boost_error=False)


def qr_svg(data: str) -> str:
    """A standalone SVG document (with its namespace, without an XML declaration, so
    it can also be inlined in HTML) of a QR code holding ``data``."""
    out = io.BytesIO()
    _qr(data).save(
        out,
        kind="svg",
        scale=QR_SCALE,
        border=QR_BORDER,
        dark="#000000",
        light="#ffffff",
        xmldecl=False,
        svgns=True,
        nl=False,
        title="Voucher QR code",
    )
    return out.getvalue().decode("utf-8")


def qr_png(data: str) -> bytes:
    """A PNG image of a QR code holding ``data``."""
    out = io.BytesIO()
    _qr(data).save(out, kind="png", scale=QR_SCALE, border=QR_BORDER, dark="#000000", light="#ffffff")
    return out.getvalue()


def code128b_values(text: str) -> list[int]:
    """The symbol values of ``text`` in Code 128 set B: start B, one value per
    character (printable ASCII, value = code point - 32), the mod-103 check value.
    The stop symbol is not included. Raises ValueError for characters outside set B."""
    if not text or any(not 32 <= ord(char) <= 126 for char in text):
        raise ValueError("Code 128 set B holds printable ASCII only")
    values = [CODE128_START_B] + [ord(char) - 32 for char in text]
    check = (values[0] + sum(position * value for position, value in enumerate(values[1:], start=1))) % 103
    return [*values, check]


def code128b_widths(text: str) -> str:
    """The module widths of the whole symbol, alternating bar and space, starting with
    a bar: the symbols of ``code128b_values`` followed by the stop pattern."""
    return "".join(CODE128_PATTERNS[value] for value in code128b_values(text)) + CODE128_STOP


def barcode_svg(code: str) -> str:
    """An SVG document of a Code 128 (set B) barcode of a voucher code.

    Accepts the plain or grouped code (raises CodeInvalid like ``code_normalise``). The
    bars carry the plain 16-symbol code (shorter bars than the grouped form; the till
    normalises what it scans either way); the grouped form is printed underneath.
    """
    plain = code_normalise(code)
    widths = code128b_widths(plain)
    modules = sum(int(width) for width in widths) + 2 * CODE128_QUIET
    width = modules * BARCODE_MODULE
    height = BARCODE_HEIGHT + BARCODE_TEXT_HEIGHT
    rects = []
    x = CODE128_QUIET
    for index, run in enumerate(widths):
        run_width = int(run)
        if index % 2 == 0:  # even positions are bars
            rects.append(
                f'<rect x="{x * BARCODE_MODULE}" y="0" width="{run_width * BARCODE_MODULE}" height="{BARCODE_HEIGHT}"/>'
            )
        x += run_width
    label = escape(code_format(plain))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Voucher barcode">'
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>'
        f'<g fill="#000000">{"".join(rects)}</g>'
        f'<text x="{width // 2}" y="{height - 4}" text-anchor="middle" '
        f'font-family="monospace" font-size="14" fill="#000000">{label}</text>'
        "</svg>"
    )
