"""Pictures typed into the workbook, fitted to the space they fill on the printed page.

A phone photo (4000 × 3000, 3–8 MB) shown 120 mm wide needs about 950 pixels at 200 dpi: embedded
as it is, six of them make a 30 MB bulletin the street's email refuses. ``fit_picture`` scales the
picture down to the printed size at ``DPI`` (never up), turns it upright by its EXIF orientation
(Word and LibreOffice ignore that tag, and python-docx sizes the image from the unrotated pixels,
so a photo taken upright came out sideways), and re-encodes it: JPEG for photographs, PNG for
pictures with transparency or few colours (screenshots, charts, logos) where JPEG would blur text.
The source file is only read.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

DPI = 200  # print resolution: more is invisible on a laser printer, less shows jagged edges
MIN_DPI = 96  # a small picture prints smaller than its frame rather than stretched into blur
JPEG_QUALITY = 85  # no visible loss in print at 200 dpi; a third of quality 92's bytes
FEW_COLOURS = 4096  # at most this many distinct colours: a screenshot or a drawing, kept lossless
MM_PER_INCH = 25.4
_ORIENTATION = 0x0112
_KEPT_AS_IS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif"}


@dataclass(frozen=True)
class FittedPicture:
    """Picture bytes ready to embed, their MIME type, and the size they print at (mm)."""

    data: bytes
    mime: str
    width_mm: float
    height_mm: float


def _printed_size(width: int, height: int, box_mm: tuple[float, float]) -> tuple[float, float]:
    """Width and height in mm of a ``width`` × ``height`` picture fitted into ``box_mm``
    (no larger than it prints at ``MIN_DPI``)."""
    scale = min(box_mm[0] / width, box_mm[1] / height, MM_PER_INCH / MIN_DPI)
    return width * scale, height * scale


def _few_colours(im: Image.Image) -> bool:
    # Counted on a sample: a 12-megapixel photo is never "few colours", and counting it costs.
    sample = im if im.width * im.height <= 1_000_000 else im.resize((1000, round(1000 * im.height / im.width)),
                                                                     Image.NEAREST)
    return sample.convert("RGB").getcolors(FEW_COLOURS) is not None


def _has_alpha(im: Image.Image) -> bool:
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        return im.convert("RGBA").getextrema()[3][0] < 255
    return False


def picture_as_is(path: Path, box_mm: tuple[float, float]) -> FittedPicture:
    """The file's own bytes at the frame's width, as healthbook embedded pictures before
    (the fallback for a picture Word shows but Pillow cannot decode, such as a WMF drawing)."""
    from docx.image.image import Image as DocxImage

    data = Path(path).read_bytes()
    image = DocxImage.from_blob(data)
    return FittedPicture(data, image.content_type, box_mm[0], box_mm[0] * image.px_height / image.px_width)


def fit_picture(path: Path, box_mm: tuple[float, float], dpi: int = DPI) -> FittedPicture:
    """``path`` fitted into a ``box_mm`` (width, height) frame at ``dpi``: upright, never enlarged.

    A picture that already fits, stands upright and is JPEG, PNG or GIF is returned byte for byte.
    Raises ``OSError`` / ``UnidentifiedImageError`` for a file Pillow cannot read.
    """
    source = Path(path).read_bytes()
    with Image.open(io.BytesIO(source)) as im:
        kind = im.format or ""
        orientation = im.getexif().get(_ORIENTATION, 1)
        turned = orientation in (5, 6, 7, 8)  # stored sideways: width and height swap when upright
        width, height = (im.height, im.width) if turned else (im.width, im.height)
        width_mm, height_mm = _printed_size(width, height, box_mm)
        wanted = (max(1, round(width_mm / MM_PER_INCH * dpi)), max(1, round(height_mm / MM_PER_INCH * dpi)))
        shrink = wanted[0] < width
        upright = orientation in (0, 1)
        if not shrink and upright and kind in _KEPT_AS_IS:
            return FittedPicture(source, _KEPT_AS_IS[kind], width_mm, height_mm)
        if shrink:
            # JPEG decodes at 1/2, 1/4 or 1/8 scale directly (still at least the wanted size): 4–8× faster.
            im.draft("RGB", (wanted[1], wanted[0]) if turned else wanted)
        im = ImageOps.exif_transpose(im)
        if im.mode in ("1", "P"):  # resampled in full colour: a palette would be scaled by nearest pixel
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        if shrink:
            im = im.resize(wanted, Image.LANCZOS, reducing_gap=3.0)
        out = io.BytesIO()
        if _has_alpha(im) or _few_colours(im):
            im = im if im.mode in ("RGBA", "LA", "P", "L", "RGB", "1") else im.convert("RGBA")
            im.save(out, "PNG", optimize=True, dpi=(dpi, dpi))
            mime = "image/png"
        else:
            im.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, dpi=(dpi, dpi))
            mime = "image/jpeg"
    data = out.getvalue()
    if upright and kind in _KEPT_AS_IS and len(source) <= len(data):  # re-encoding would not help
        return FittedPicture(source, _KEPT_AS_IS[kind], width_mm, height_mm)
    return FittedPicture(data, mime, width_mm, height_mm)


__all__ = ["DPI", "FittedPicture", "UnidentifiedImageError", "fit_picture", "picture_as_is"]
