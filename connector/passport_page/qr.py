"""QR codes of passport page URLs (ISO/IEC 18004, through the ``qrcode`` library) and the
printable label: the code with the battery identifier under it.

Error correction level Q (25 % of the code may be lost) because the label lives on a battery
pack: scratched, dirty, half covered by a cable. The border is the four modules the standard
asks for, so a scanner finds the code on any background.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence

import qrcode
import qrcode.constants
from PIL import Image, ImageDraw, ImageFont
from qrcode.image.svg import SvgPathImage

ERROR_CORRECTION = qrcode.constants.ERROR_CORRECT_Q
BORDER = 4


def _code(data: str, box_size: int) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=ERROR_CORRECTION, box_size=box_size, border=BORDER)
    code.add_data(data)
    code.make(fit=True)
    return code


def qr_svg(data: str) -> bytes:
    """A standalone SVG (one path, scalable, for screens and vector printing)."""
    image = _code(data, 10).make_image(image_factory=SvgPathImage)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


def qr_image(data: str, *, box_size: int = 10) -> Image.Image:
    """The code as a black-and-white Pillow image, ``box_size`` pixels per module."""
    image = _code(data, box_size).make_image(fill_color="black", back_color="white")
    return image.get_image().convert("L")


def qr_png(data: str, *, box_size: int = 10) -> bytes:
    buffer = io.BytesIO()
    qr_image(data, box_size=box_size).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


_FONTS = ("DejaVuSansMono.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
          "LiberationMono-Regular.ttf")


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for name in _FONTS:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)  # Pillow's own font: always there


def label_png(data: str, lines: Sequence[str], *, box_size: int = 12,
              chars_per_line: int = 32) -> bytes:
    """A printable label: the QR code of ``data`` and ``lines`` of text centred under it
    (long lines wrapped, e.g. a DID). At 12 px per module a 41-module code is ~580 px wide,
    about 5 cm at 300 dpi."""
    code = qr_image(data, box_size=box_size)
    font = _font(max(14, box_size * 2))
    wrapped = [part for line in lines for part in
               (textwrap.wrap(line, chars_per_line, break_on_hyphens=False) or [""])]
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    heights = [measure.textbbox((0, 0), text, font=font)[3] for text in wrapped]
    widths = [measure.textlength(text, font=font) for text in wrapped]
    gap = box_size
    width = max([code.width, *[int(w) + 4 * gap for w in widths]])
    height = code.height + sum(h + gap // 2 for h in heights) + 2 * gap
    label = Image.new("L", (width, height), 255)
    label.paste(code, ((width - code.width) // 2, 0))
    draw = ImageDraw.Draw(label)
    y = code.height
    for text, text_width, text_height in zip(wrapped, widths, heights, strict=True):
        draw.text(((width - text_width) / 2, y), text, fill=0, font=font)
        y += text_height + gap // 2
    buffer = io.BytesIO()
    label.save(buffer, format="PNG", optimize=True, dpi=(300, 300))
    return buffer.getvalue()


__all__ = ["label_png", "qr_image", "qr_png", "qr_svg"]
