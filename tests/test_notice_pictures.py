"""Bulletin pictures: phone photos scaled to their printed size, upright, small ones left alone.

Pictures are read back from the .docx's media parts (the zip) and from the inline shapes' sizes;
the sources are made with Pillow in a temp folder and typed into 简报稿件 as staff would.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import zipfile
from pathlib import Path

import pytest
from docx import Document
from PIL import Image, ImageDraw

from macros import demo, schema
from macros.book.read import read_workbook
from macros.render import context as ctx
from macros.render.notices import BULLETIN_PICTURE_MM, NoticeOptions, render_notices
from macros.render.pictures import DPI

MM_PER_INCH = 25.4


def photo(path: Path, width: int = 4032, height: int = 3024, orientation: int = 1, quality: int = 92) -> Path:
    """A photo-like JPEG: a gradient with noise, the top-left quarter red (to tell which way is up)."""
    gradient = Image.linear_gradient("L").resize((width, height))
    noise = Image.effect_noise((width, height), 40)
    im = Image.merge("RGB", (gradient, noise, gradient.transpose(Image.FLIP_LEFT_RIGHT)))
    ImageDraw.Draw(im).rectangle((0, 0, width // 2, height // 2), fill=(230, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = orientation
    im.save(path, quality=quality, exif=exif.tobytes())
    return path


def screenshot(path: Path, width: int = 1920, height: int = 1080) -> Path:
    im = Image.new("RGB", (width, height), (246, 246, 246))
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, 0, width, 60), fill=(33, 115, 70))
    for row in range(40):
        draw.line((0, 90 + row * 24, width, 90 + row * 24), fill=(210, 210, 210))
        draw.text((20, 95 + row * 24), f"C{row:02d} 进度 12.5%", fill=(20, 20, 20))
    im.save(path)
    return path


def bulletin(demo_master: Path, folder: Path, pictures: list[str], formats=("docx",)):
    """The demo's bulletin with ``pictures`` typed into its articles' 图片文件 (relative to ``folder``)."""
    book = read_workbook(demo_master)
    data = ctx.NoticeInput(book.frames, book.settings, demo.DEMO_AS_OF, None, folder)
    articles = data.frames[schema.ARTICLES.name]
    # The seed's captions, typed in as whoever adds its photos would (the demo ships neither).
    articles["caption"] = [a["caption"] or None for a in demo.ARTICLES]
    for i, name in enumerate(pictures):
        articles.loc[articles.index[i], "image"] = name
    result = render_notices(data, folder / "out", NoticeOptions(kinds=(ctx.BULLETIN,), formats=formats))
    [notice] = result.notices
    return folder / "out", notice, result


def media(docx: Path) -> dict[str, bytes]:
    """The .docx's image parts by name, in document order of their names."""
    with zipfile.ZipFile(docx) as z:
        return {n: z.read(n) for n in sorted(z.namelist()) if n.startswith("word/media/")}


def opened(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def printed_px(mm: float) -> int:
    return round(mm / MM_PER_INCH * DPI)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def phone_bulletin(demo_master, tmp_path_factory):
    """Two phone photos (one stored sideways with EXIF orientation 6) and a PNG screenshot."""
    folder = tmp_path_factory.mktemp("photos")
    (folder / "照片").mkdir()
    sources = [photo(folder / "照片" / "IMG_0001.jpg"),
               photo(folder / "照片" / "IMG_0002.jpg", orientation=6),
               screenshot(folder / "照片" / "截图.png")]
    before = {p: digest(p) for p in sources}
    out, notice, result = bulletin(demo_master, folder, [str(p.relative_to(folder)) for p in sources],
                                   formats=("docx", "html"))
    return folder, sources, before, out / notice.docx, out / notice.html, result


def test_phone_photos_are_scaled_to_their_printed_width(phone_bulletin):
    folder, sources, before, docx, html, result = phone_bulletin
    parts = media(docx)
    photos = [opened(d) for n, d in parts.items() if n.endswith((".jpg", ".jpeg"))]
    assert len(photos) == 2
    landscape = next(im for im in photos if im.width > im.height)
    assert landscape.size == (printed_px(BULLETIN_PICTURE_MM[0]), printed_px(BULLETIN_PICTURE_MM[1]))
    assert sum(len(d) for d in parts.values()) < sum(p.stat().st_size for p in sources) / 10
    assert docx.stat().st_size < 1_000_000, docx.stat().st_size
    shapes = Document(str(docx)).inline_shapes
    assert [round(s.width.mm) for s in shapes] == [120, 68, 120]
    # The photos in the folder are only read: same bytes, no file added beside them.
    assert {p: digest(p) for p in sources} == before
    assert sorted(p.name for p in (folder / "照片").iterdir()) == ["IMG_0001.jpg", "IMG_0002.jpg", "截图.png"]


def test_a_photo_taken_upright_stands_upright(phone_bulletin):
    folder, sources, before, docx, html, result = phone_bulletin
    portrait = [opened(d) for d in media(docx).values() if opened(d).height > opened(d).width]
    [im] = portrait
    assert im.size == (printed_px(BULLETIN_PICTURE_MM[1] * 3 / 4), printed_px(BULLETIN_PICTURE_MM[1]))
    assert "exif" not in im.info or im.getexif().get(0x0112, 1) == 1  # no viewer turns it again
    # Orientation 6: the stored top-left (red) corner is the upright picture's top-right.
    r, g, b = im.convert("RGB").getpixel((im.width * 3 // 4, im.height // 4))
    assert r > 180 and g < 80, (r, g, b)
    r, g, b = im.convert("RGB").getpixel((im.width // 4, im.height // 4))
    assert not (r > 180 and g < 80), (r, g, b)
    shape = Document(str(docx)).inline_shapes[1]
    assert shape.height > shape.width  # Word shows it portrait, not squeezed into a landscape frame


def test_a_screenshot_stays_png_and_sharp(phone_bulletin):
    folder, sources, before, docx, html, result = phone_bulletin
    [png] = [opened(d) for n, d in media(docx).items() if n.endswith(".png")]
    assert png.format == "PNG" and png.width == printed_px(BULLETIN_PICTURE_MM[0])


def test_the_web_page_carries_the_same_fitted_pictures(phone_bulletin):
    folder, sources, before, docx, html, result = phone_bulletin
    page = html.read_text(encoding="utf-8")
    uris = re.findall(r'src="data:(image/\w+);base64,([^"]+)"', page)
    assert [kind for kind, _ in uris] == ["image/jpeg", "image/jpeg", "image/png"]
    assert sorted(base64.b64decode(data) for _, data in uris) == sorted(media(docx).values())
    assert html.stat().st_size < 1_500_000


def test_a_caption_prints_only_under_its_picture(phone_bulletin):
    folder, sources, before, docx, html, result = phone_bulletin
    doc = Document(str(docx))
    texts = [p.text for p in doc.paragraphs]
    for article in demo.ARTICLES[:2]:  # with pictures: the caption right under the picture
        at = texts.index(article["caption"])
        assert doc.paragraphs[at - 1]._p.xpath(".//w:drawing")
    stray = demo.ARTICLES[3]["caption"]  # typed, but the article has no picture
    assert stray and stray not in texts and stray not in html.read_text(encoding="utf-8")


def test_small_pictures_are_not_enlarged(demo_master, tmp_path):
    small = photo(tmp_path / "小图.jpg", 640, 480, quality=80)
    logo = tmp_path / "标志.png"
    Image.new("RGBA", (200, 100), (200, 30, 30, 128)).save(logo)
    out, notice, result = bulletin(demo_master, tmp_path, ["小图.jpg", "标志.png"])
    parts = list(media(out / notice.docx).values())
    # Already smaller than the frame needs: embedded byte for byte, printed at no less than 96 dpi.
    assert parts == [small.read_bytes(), logo.read_bytes()]
    widths = [s.width.mm for s in Document(str(out / notice.docx)).inline_shapes]
    assert widths == pytest.approx([120, 200 / 96 * MM_PER_INCH], abs=0.1)  # not 120 mm of blur


def test_a_large_picture_with_transparency_stays_png_with_its_alpha(demo_master, tmp_path):
    im = Image.linear_gradient("L").resize((3000, 2000))
    Image.merge("RGBA", (im, im, im, im.transpose(Image.FLIP_LEFT_RIGHT))).save(tmp_path / "透明.png")
    out, notice, result = bulletin(demo_master, tmp_path, ["透明.png"])
    [data] = media(out / notice.docx).values()
    fitted = opened(data)
    assert fitted.format == "PNG" and fitted.mode == "RGBA" and fitted.width == printed_px(120)
    assert fitted.getextrema()[3][0] < 50


def left_out(result, row: int, name: str) -> str:
    """The one warning about the picture ``name`` of the article on Excel row ``row``."""
    article = f"A{row - 1:02d}"  # the demo's articles, one a row from row 2
    [warning] = [w for w in result.warnings if f"“{name}”" in w]
    assert warning.startswith(f"{schema.ARTICLES.name}表第{row}行（{article}）的“图片文件”“{name}”"), warning
    assert warning.endswith("简报中已略去这张图片。"), warning
    return warning


def test_a_picture_cut_short_is_left_out_with_a_note(demo_master, tmp_path):
    # Copies cut short in copying or downloading: a large PNG and JPEG (shrunk when whole) and a small
    # JPEG (kept byte for byte when whole). Their headers are whole, their pixels are not: Word would
    # show them broken, and python-docx stopped the whole report on the PNG.
    big = screenshot(tmp_path / "whole.png", 2000, 1500).read_bytes()
    (tmp_path / "半张.png").write_bytes(big[:len(big) // 2])
    big = photo(tmp_path / "whole.jpg", 2000, 1500).read_bytes()
    (tmp_path / "半张.jpg").write_bytes(big[:len(big) // 2])
    small = photo(tmp_path / "small.jpg", 640, 480).read_bytes()
    (tmp_path / "小半张.jpg").write_bytes(small[:len(small) - 2000])
    photo(tmp_path / "整张.jpg", 2000, 1500)
    out, notice, result = bulletin(demo_master, tmp_path, ["半张.png", "半张.jpg", "小半张.jpg", "整张.jpg"],
                                   formats=("docx", "html"))
    for row, name in enumerate(["半张.png", "半张.jpg", "小半张.jpg"], 2):
        assert "图片文件不完整" in left_out(result, row, name)
    [whole] = media(out / notice.docx).values()
    assert opened(whole).width == printed_px(120)
    assert (out / notice.html).read_text(encoding="utf-8").count("data:image/") == 1


def test_a_16_bit_greyscale_picture_keeps_its_tones(demo_master, tmp_path):
    # A scanner's or microscope's 16-bit PNG (Pillow mode I;16): shrunk in that mode and then cut to
    # 8 bits, every value above 255 came out white.
    import numpy as np

    source = np.tile(np.linspace(0, 65535, 2000), (1500, 1)).astype(np.uint16)  # dark left, light right
    Image.fromarray(source).save(tmp_path / "灰度.png")
    assert Image.open(tmp_path / "灰度.png").mode == "I;16"
    out, notice, result = bulletin(demo_master, tmp_path, ["灰度.png"])
    [data] = media(out / notice.docx).values()
    fitted = np.asarray(opened(data).convert("L"), dtype=float)
    assert fitted.shape[1] == printed_px(120)
    assert abs(fitted.mean() - source.mean() / 257) < 2, (fitted.mean(), source.mean() / 257)
    quarter = fitted.shape[1] // 4
    assert fitted[:, :quarter].mean() < 40 and fitted[:, -quarter:].mean() > 215


def test_a_cmyk_jpeg_goes_in_as_a_jpeg_word_reads(demo_master, tmp_path):
    # Print shops and Photoshop save CMYK JPEGs (Adobe APP14, no JFIF/Exif header): python-docx cannot
    # read them, Pillow can; small or large, they go in re-encoded as RGB.
    for name, size in (("印刷小图.jpg", (800, 600)), ("印刷大图.jpg", (3000, 2000))):
        Image.open(photo(tmp_path / "rgb.jpg", *size)).convert("CMYK").save(tmp_path / name, quality=92)
    assert Image.open(tmp_path / "印刷小图.jpg").mode == "CMYK"
    assert ctx.picture_problem(tmp_path / "印刷小图.jpg") == ""
    out, notice, result = bulletin(demo_master, tmp_path, ["印刷小图.jpg", "印刷大图.jpg"])
    assert not [w for w in result.warnings if "印刷" in w]
    small, large = (opened(d) for d in media(out / notice.docx).values())
    for im in (small, large):
        assert im.format == "JPEG" and im.mode == "RGB"
        r, g, b = im.getpixel((im.width // 4, im.height // 4))  # the red quarter, not inverted
        assert r > 180 and g < 80 and b < 80, (r, g, b)
    assert small.width == 800 and large.width == printed_px(120)


def placeable_wmf(path: Path) -> Path:
    """The smallest Windows metafile with a placeable header (1 × 0.75 inch, no drawing records)."""
    import struct

    head = struct.pack("<IHhhhhHI", 0x9AC6CDD7, 0, 0, 0, 1440, 1080, 1440, 0)
    checksum = 0
    for word in struct.unpack("<10H", head):
        checksum ^= word
    path.write_bytes(head + struct.pack("<H", checksum) + struct.pack("<HHHIHIHIH", 1, 9, 0x300, 12, 0, 3, 0, 3, 0))
    return path


def test_a_folder_a_missing_file_or_a_drawing_is_named_for_what_it_is(demo_master, tmp_path):
    (tmp_path / "照片.jpg").mkdir()  # a folder named like a picture
    assert ctx.picture_problem(tmp_path / "照片.jpg") == "是文件夹，不是图片"
    assert ctx.picture_problem(tmp_path / "没有.jpg") == "不存在"
    # Pillow knows a WMF drawing but decodes it only on Windows: not a file "cut short".
    assert Image.open(placeable_wmf(tmp_path / "图.wmf")).format == "WMF"
    assert "WMF/EMF 矢量图" in ctx.picture_problem(tmp_path / "图.wmf")
    out, notice, result = bulletin(demo_master, tmp_path, ["照片.jpg", "没有.jpg"])
    assert "是文件夹，不是图片" in left_out(result, 2, "照片.jpg")
    assert "不存在" in left_out(result, 3, "没有.jpg")
    assert media(out / notice.docx) == {}


def test_a_picture_too_large_to_open_is_left_out_in_chinese(demo_master, tmp_path, recwarn):
    # 400 megapixels (Pillow refuses it as a possible decompression bomb: it went in unfitted and
    # unannounced) and 100 megapixels (Pillow only warns, in English, on the clerk's console).
    Image.new("1", (20000, 20000)).save(tmp_path / "巨图.png")
    Image.new("L", (10000, 10000), 128).save(tmp_path / "大图.png")
    out, notice, result = bulletin(demo_master, tmp_path, ["巨图.png", "大图.png"], formats=("docx", "html"))
    assert "图片过大（20000×20000 像素）" in left_out(result, 2, "巨图.png")
    assert "图片过大（10000×10000 像素）" in left_out(result, 3, "大图.png")
    assert "缩小" in left_out(result, 3, "大图.png")
    assert media(out / notice.docx) == {}
    assert "data:image/" not in (out / notice.html).read_text(encoding="utf-8")
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


def test_a_48_megapixel_phone_photo_and_a_larger_jpeg_go_in(demo_master, tmp_path, recwarn):
    # JPEGs decode at an eighth of their width and height when shrunk that far, so a JPEG beyond the
    # limit for other pictures, and beyond the 179 MP Pillow refuses outright, still goes in (quickly).
    Image.linear_gradient("L").resize((8000, 6000)).convert("RGB").save(tmp_path / "4800万.jpg", quality=85)
    Image.linear_gradient("L").resize((16000, 12000)).save(tmp_path / "2亿.jpg", quality=85)  # 192 MP
    out, notice, result = bulletin(demo_master, tmp_path, ["4800万.jpg", "2亿.jpg"])
    assert not [w for w in result.warnings if ".jpg" in w]
    assert [opened(d).size for d in media(out / notice.docx).values()] == [(printed_px(120), printed_px(90))] * 2
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]
