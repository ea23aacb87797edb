"""Pictures typed into the workbook, fitted to the space they fill on the printed page.

A phone photo (4000 × 3000, 3–8 MB) shown 120 mm wide needs about 950 pixels at 200 dpi: embedded
as it is, six of them make a 30 MB bulletin the street's email refuses. ``fit_picture`` scales the
picture down to the printed size at ``DPI`` (never up), turns it upright by its EXIF orientation
(Word and LibreOffice ignore that tag, and python-docx sizes the image from the unrotated pixels,
so a photo taken upright came out sideways), and re-encodes it: JPEG for photographs, PNG for
pictures with transparency or few colours (screenshots, charts, logos) where JPEG would blur text.
The source file is only read.

Whether a picture can go in is decided here, once, by decoding it whole with Pillow:
``picture_problem`` says why not (a Chinese phrase), ``fit_picture`` raises ``PictureUnusable``
with the same phrase. A file Pillow cannot decode whole (cut short in copying) is left out, never
embedded broken.
"""

from __future__ import annotations

import io
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import HealthbookError

DPI = 200  # print resolution: more is invisible on a laser printer, less shows jagged edges
MIN_DPI = 96  # a small picture prints smaller than its frame rather than stretched into blur
JPEG_QUALITY = 85  # no visible loss in print at 200 dpi; a third of quality 92's bytes
FEW_COLOURS = 4096  # at most this many distinct colours: a screenshot or a drawing, kept lossless
# Pixels decoded at most: Pillow's own bomb threshold (89.5 M = 256 MB of 24-bit pixels), rounded.
# Measured here: a 90 MP PNG fits in 2.6 s with 0.5 GB at its peak (Pillow holds 4 bytes a pixel),
# which an office PC beside Excel can spare; a 48 MP phone photo is far below it, and a JPEG counts
# at the scale it decodes (1/8 for a bulletin frame), so even a 200 MP phone JPEG goes in. Larger
# is a scan or render nobody needs at 120 mm, or a file made to exhaust memory.
MAX_PIXELS = 90_000_000
SHRINK_TO_WIDTH = 4000  # what the message suggests: plenty for any printed frame
MM_PER_INCH = 25.4
# A bulletin photo's frame (mm): 4:3 landscape fills it; portrait stands 90 mm tall, not 160.
BULLETIN_PICTURE_MM = (120.0, 90.0)
_ORIENTATION = 0x0112
_KEPT_AS_IS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif"}
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")

# What is wrong with a picture, said after its name ("图片文件“x.jpg”不存在").
MISSING = "不存在"
FOLDER = "是文件夹，不是图片"
NOT_A_PICTURE = "不是 Word 能显示的图片（请用 JPG 或 PNG）"
DAMAGED = "图片文件不完整或已损坏（可能复制或下载时中断），请重新复制原图后再填"
UNCONVERTIBLE = "无法转换成 Word 能显示的图片（请另存为 JPG 或 PNG 后再填）"
DRAWING = "是 WMF/EMF 矢量图，无法缩放放入简报（请另存为 PNG 后再填）"


class PictureUnusable(HealthbookError):
    """A picture that cannot go in; ``reason`` is the Chinese phrase ``picture_problem`` returns."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"图片“{path}”{reason}。")
        self.path, self.reason = path, reason


def too_large(width: int, height: int) -> str:
    """The phrase for a picture of ``width`` × ``height`` pixels over ``MAX_PIXELS``."""
    return (f"图片过大（{width}×{height} 像素），请先缩小（如用“画图”的“调整大小”把宽度改为"
            f"{SHRINK_TO_WIDTH} 像素以内）再填")


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
    (for comparison in bench/; a bulletin embeds only what ``fit_picture`` returns)."""
    from docx.image.image import Image as DocxImage

    data = Path(path).read_bytes()
    image = DocxImage.from_blob(data)
    return FittedPicture(data, image.content_type, box_mm[0], box_mm[0] * image.px_height / image.px_width)


class _Refused(Exception):
    """Why a picture cannot go in (a phrase of this module), raised inside ``_fit``."""


_OPENING = threading.Lock()


@contextmanager
def _opening():
    """Pillow's decompression-bomb check off while a picture is opened, and its warnings silent.

    Pillow counts a JPEG's full size before ``draft`` can decode it at 1/8, warns in English on the
    clerk's console above 89 M pixels and refuses above 179 M. ``_fit`` checks the pixels it will
    really decode against ``MAX_PIXELS`` and says so in Chinese instead.
    """
    with _OPENING, warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="PIL")  # corrupt EXIF and the like: nothing to act on
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _eight_bit(im: Image.Image) -> Image.Image:
    """A 16- or 32-bit greyscale picture as 8-bit 'L', scaled as a viewer shows it (Pillow's own
    conversion clips every value above 255 to white)."""
    if im.mode.startswith("I;16"):
        low, high = 0, 65535
    else:
        low, high = im.getextrema()
        if low >= 0 and high <= 255:
            low, high = 0, 255
        elif low >= 0 and high <= 65535:
            low, high = 0, 65535
    scale = 255 / (high - low) if high > low else 0.0
    return im.convert("F").point(lambda v: (v - low) * scale).convert("L")


def _word_reads(source: bytes, mode: str) -> bool:
    """Whether these bytes can go in untouched: python-docx reads their header (it refuses a JPEG
    without JFIF/Exif header, as CMYK ones from print shops are) and a PNG's checksums hold."""
    from docx.image.image import Image as DocxImage

    if mode == "CMYK":  # browsers and Word disagree on its colours: always re-encoded as RGB
        return False
    try:
        DocxImage.from_blob(source)
        with Image.open(io.BytesIO(source)) as im:
            im.verify()
    except Exception:  # noqa: BLE001 - any complaint means: re-encode what Pillow decoded
        return False
    return True


def _encode(im: Image.Image, wanted: tuple[int, int] | None, dpi: int) -> tuple[bytes, str]:
    """``im`` (decoded, upright) resized to ``wanted`` if given, as PNG or JPEG bytes and their MIME type."""
    if im.mode in _SIXTEEN_BIT:  # before resizing: resampled in 'I;16', it would come out white
        im = _eight_bit(im)
    if im.mode in ("1", "P"):  # resampled in full colour: a palette would be scaled by nearest pixel
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if wanted:
        im = im.resize(wanted, Image.LANCZOS, reducing_gap=3.0)
    out = io.BytesIO()
    if _has_alpha(im) or _few_colours(im):
        im = im if im.mode in ("RGBA", "LA", "P", "L", "RGB", "1") else im.convert("RGBA")
        im.save(out, "PNG", optimize=True, dpi=(dpi, dpi))
        return out.getvalue(), "image/png"
    im.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, dpi=(dpi, dpi))
    return out.getvalue(), "image/jpeg"


def _fit(source: bytes, box_mm: tuple[float, float], dpi: int) -> FittedPicture:
    """``source`` fitted (see ``fit_picture``); raises ``_Refused``."""
    # Pillow's plugins raise many kinds of errors on a damaged file (OSError, SyntaxError, EOFError,
    # struct.error, IndexError…): any of them means the picture cannot be decoded whole.
    try:
        with _opening():
            im = Image.open(io.BytesIO(source))
    except UnidentifiedImageError:
        raise _Refused(NOT_A_PICTURE) from None
    except Exception:  # noqa: BLE001
        raise _Refused(DAMAGED) from None
    with im, _opening():
        kind = im.format or ""
        try:
            orientation = im.getexif().get(_ORIENTATION, 1)
        except Exception:  # noqa: BLE001 - a damaged EXIF block: the pixels may still be whole
            orientation = 1
        turned = orientation in (5, 6, 7, 8)  # stored sideways: width and height swap when upright
        width, height = (im.height, im.width) if turned else (im.width, im.height)
        width_mm, height_mm = _printed_size(width, height, box_mm)
        wanted = (max(1, round(width_mm / MM_PER_INCH * dpi)), max(1, round(height_mm / MM_PER_INCH * dpi)))
        shrink = wanted[0] < width
        upright = orientation in (0, 1)
        if kind == "WMF":  # Pillow reads WMF and EMF pixels only on Windows: not "cut short"
            raise _Refused(DRAWING)
        if shrink:
            # JPEG decodes at 1/2, 1/4 or 1/8 scale directly (still at least the wanted size): 4–8× faster
            # and 16–64× less memory, which is why a JPEG counts against MAX_PIXELS at that scale.
            im.draft("RGB", (wanted[1], wanted[0]) if turned else wanted)
        if im.width * im.height > MAX_PIXELS:
            raise _Refused(too_large(width, height))
        try:
            im.load()  # every pixel, now: a file cut short fails here, not later in Word
        except MemoryError:
            raise _Refused(too_large(width, height)) from None
        except Exception:  # noqa: BLE001
            raise _Refused(DAMAGED) from None
        if not shrink and upright and kind in _KEPT_AS_IS and _word_reads(source, im.mode):
            return FittedPicture(source, _KEPT_AS_IS[kind], width_mm, height_mm)
        try:
            ImageOps.exif_transpose(im, in_place=True)  # not a copy: 360 MB more for a 90 MP picture
            data, mime = _encode(im, wanted if shrink else None, dpi)
        except MemoryError:
            raise _Refused(too_large(width, height)) from None
        except Exception:  # noqa: BLE001 - a colour space Pillow cannot turn into RGB (LAB, …)
            raise _Refused(UNCONVERTIBLE) from None
        if upright and kind in _KEPT_AS_IS and len(source) <= len(data) and _word_reads(source, im.mode):
            return FittedPicture(source, _KEPT_AS_IS[kind], width_mm, height_mm)  # re-encoding would not help
    return FittedPicture(data, mime, width_mm, height_mm)


@lru_cache(maxsize=16)
def _fitted(path: str, identity: tuple, box_mm: tuple[float, float], dpi: int) -> FittedPicture | str:
    # A bulletin asks twice (can it go in? then the picture): the picture is decoded once. ``identity``
    # (size, mtime, inode) makes a file changed in between be decoded again.
    try:
        return _fit(Path(path).read_bytes(), box_mm, dpi)
    except _Refused as refused:
        return str(refused)
    except OSError as err:
        return f"无法读取（{err.strerror or err}）"


def fit_picture(path: Path, box_mm: tuple[float, float], dpi: int = DPI) -> FittedPicture:
    """``path`` fitted into a ``box_mm`` (width, height) frame at ``dpi``: upright, never enlarged.

    A picture that already fits, stands upright and is a JPEG, PNG or GIF Word reads is returned byte
    for byte. Raises ``PictureUnusable`` (its ``reason`` in Chinese) for a missing file, a folder, a
    file Pillow cannot decode whole, or more than ``MAX_PIXELS`` to decode.
    """
    path = Path(path)
    if path.is_dir():
        raise PictureUnusable(path, FOLDER)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise PictureUnusable(path, MISSING) from None
    except OSError as err:
        raise PictureUnusable(path, f"无法读取（{err.strerror or err}）") from None
    if not path.is_file():  # a device or pipe: reading it could wait for ever
        raise PictureUnusable(path, NOT_A_PICTURE)
    outcome = _fitted(str(path), (stat.st_size, stat.st_mtime_ns, stat.st_ino), tuple(box_mm), dpi)
    if isinstance(outcome, str):
        raise PictureUnusable(path, outcome)
    return outcome


def picture_problem(path: Path, box_mm: tuple[float, float] = BULLETIN_PICTURE_MM) -> str:
    """Why the picture at ``path`` cannot go into a ``box_mm`` frame ('' when it can): the one rule,
    shared by the warning in 校验/通知 and the picture embedded."""
    try:
        fit_picture(path, box_mm)
    except PictureUnusable as unusable:
        return unusable.reason
    return ""


__all__ = ["BULLETIN_PICTURE_MM", "DPI", "MAX_PIXELS", "FittedPicture", "PictureUnusable", "fit_picture",
           "picture_as_is", "picture_problem"]
