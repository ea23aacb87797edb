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


def test_a_photo_pillow_cannot_decode_whole_is_embedded_as_typed(demo_master, tmp_path):
    # A photo cut short in copying: its header is whole (Word shows what there is), its pixels are not.
    # The whole photo beside it is still fitted.
    cut = tmp_path / "半张.jpg"
    raw = photo(cut, 2000, 1500).read_bytes()[:60_000]
    cut.write_bytes(raw)
    photo(tmp_path / "整张.jpg", 2000, 1500)
    out, notice, result = bulletin(demo_master, tmp_path, ["半张.jpg", "整张.jpg"])
    first, second = media(out / notice.docx).values()
    assert first == raw and opened(second).width == printed_px(120)
    assert [round(s.width.mm) for s in Document(str(out / notice.docx)).inline_shapes] == [120, 120]
    assert cut.read_bytes() == raw
