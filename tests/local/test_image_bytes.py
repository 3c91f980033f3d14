"""The byte-level EXIF strip (storage/strip.py) and the image reader (storage/images.py) on
files Pillow writes: what is removed, what is kept, that every result still decodes to the
same pixels, and what is refused (formats that cannot be stripped losslessly, SVG entities)."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image, ImageChops

from run402_cli.local.storage import images
from run402_cli.local.storage.strip import CannotStrip, strip

XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'


def picture(size: tuple[int, int] = (64, 48)) -> Image.Image:
    g = Image.linear_gradient("L").resize(size)
    return Image.merge("RGB", (g, g.transpose(Image.Transpose.ROTATE_90).resize(size), Image.new("L", size, 90)))


def exif(orientation: int | None = None) -> Image.Exif:
    e = Image.Exif()
    e[0x010F], e[0x0110] = "Canon", "EOS R5"
    if orientation:
        e[0x0112] = orientation
    e.get_ifd(0x8825)[2] = (48.0, 51.0, 29.0)
    return e


def save(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def same_pixels(a: bytes, b: bytes) -> bool:
    x, y = Image.open(io.BytesIO(a)).convert("RGB"), Image.open(io.BytesIO(b)).convert("RGB")
    return x.size == y.size and ImageChops.difference(x, y).getbbox() is None


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_loses_exif_and_xmp_keeps_its_pixels(progressive):
    data = save(picture(), "JPEG", exif=exif(), xmp=XMP, progressive=progressive)
    assert b"Exif\x00\x00" in data and b"xmpmeta" in data
    out, changed = strip(data)
    assert changed and b"Exif\x00\x00" not in out and b"xmpmeta" not in out
    assert not Image.open(io.BytesIO(out)).getexif() and same_pixels(data, out)
    assert strip(out) == (out, False)  # nothing left to remove


def test_jpeg_keeps_only_a_needed_orientation_and_drops_an_mpo_second_picture():
    data = save(picture(), "JPEG", exif=exif(orientation=8))
    out, _ = strip(data, orientation=8)
    kept = Image.open(io.BytesIO(out)).getexif()
    assert dict(kept) == {0x0112: 8} and not kept.get_ifd(0x8825) and same_pixels(data, out)
    mpo = save(picture(), "MPO", save_all=True, append_images=[picture((32, 24))], exif=exif())
    assert Image.open(io.BytesIO(mpo)).n_frames == 2 and mpo.count(b"Exif\x00\x00") == 2
    out, changed = strip(mpo)
    assert changed and b"Exif\x00\x00" not in out and b"MPF\x00" not in out
    assert Image.open(io.BytesIO(out)).format == "JPEG" and same_pixels(mpo, out)
    assert strip(mpo + b"trailing motion-photo video") == (out, True)


def test_png_drops_exif_and_xmp_chunks_but_not_other_text():
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", "hello")
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    data = save(picture(), "PNG", exif=exif(), pnginfo=info)
    out, changed = strip(data)
    assert changed and b"eXIf" not in out and b"xmpmeta" not in out
    back = Image.open(io.BytesIO(out))
    back.load()
    assert back.text == {"Comment": "hello"} and not back.getexif() and same_pixels(data, out)
    out, _ = strip(data, orientation=3)
    back = Image.open(io.BytesIO(out))
    back.load()
    assert dict(back.getexif()) == {0x0112: 3}
    with pytest.raises(CannotStrip):
        strip(data[:60])


def test_webp_drops_its_exif_and_xmp_chunks_and_fixes_the_header():
    data = save(picture(), "WEBP", exif=exif(), xmp=XMP, lossless=True)
    flags = data[20]
    assert flags & 0x0C == 0x0C
    out, changed = strip(data)
    assert changed and b"EXIF" not in out and b"XMP " not in out and out[20] & 0x0C == 0
    assert struct.unpack("<I", out[4:8])[0] == len(out) - 8
    back = Image.open(io.BytesIO(out))
    assert not back.getexif() and "xmp" not in back.info and same_pixels(data, out)
    out, _ = strip(data, orientation=6)
    assert out[20] & 0x0C == 0x08 and dict(Image.open(io.BytesIO(out)).getexif()) == {0x0112: 6}
    plain = save(picture(), "WEBP")
    assert strip(plain) == (plain, False)


def test_formats_that_cannot_be_stripped_losslessly_say_so():
    for fmt in ("GIF", "TIFF"):
        with pytest.raises(CannotStrip) as info:
            strip(save(picture(), fmt))
        assert fmt in info.value.note
    bmp = save(picture(), "BMP")
    assert strip(bmp) == (bmp, False)
    with pytest.raises(CannotStrip):
        strip(b"<svg/>")


def test_read_image_facts_and_bounds():
    pic = images.read_image(save(picture((640, 480)), "JPEG", exif=exif(orientation=6)), variants=True,
                            exif_summary=True)
    assert pic is not None and (pic.width_px, pic.height_px, pic.image_format) == (640, 480, "jpeg")
    assert pic.image_info["orientation"] == 6 and pic.image_exif == {"Make": "Canon", "Model": "EOS R5",
                                                                     "has_gps": True, "tag_count": 5}
    assert [(n, w, h) for n, _b, w, h in pic.variants] == [("thumb", 320, 427), ("medium", 480, 640),
                                                          ("large", 480, 640)]
    anim = save(picture(), "GIF", save_all=True, append_images=[picture().rotate(90), picture().rotate(180)])
    info = images.read_image(anim, variants=False, exif_summary=False).image_info
    assert info["animated"] is True and info["frame_count"] == 3 and info["color_space"] == "palette"
    deep = images.read_image(save(Image.new("I;16", (10, 10), 50000), "PNG"), variants=True, exif_summary=False)
    assert deep.image_info["bit_depth"] == 16 and deep.image_info["color_space"] == "gray"
    assert images.read_image(b"\x89PNG\r\n\x1a\n", variants=True, exif_summary=True) is None
    assert images.read_image(save(picture(), "ICO"), variants=True, exif_summary=True) is None  # not a format read
    wide = save(Image.new("1", (9000, 8000)), "PNG")  # 72 megapixels, a few kB
    assert images.read_image(wide, variants=True, exif_summary=True) is None


def test_blurhash_matches_the_reference_encoder():
    g = Image.linear_gradient("L").resize((32, 20))
    assert images.blurhash(g.convert("RGB")) == "LyHV9woffQof00WBfQWBxuj[fQj["
    im = Image.merge("RGB", (g, Image.linear_gradient("L").rotate(90).resize((32, 20)), Image.new("L", (32, 20), 80)))
    assert images.blurhash(im) == "L#HVB^l|gJnl2=WDfjWpwxjtfQjt"


def test_svg_root_size_without_entities():
    assert images.read_svg(b'<svg xmlns="http://www.w3.org/2000/svg" width="120px" height="80"/>') == (120, 80)
    assert images.read_svg(b'<svg width="100%" viewBox="0,0 24 12.4"/>') == (24, 12)
    assert images.read_svg(b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
                           b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd"><svg width="5" height="6"/>') == (5, 6)
    assert images.read_svg(b'<svg width="2em" height="1em"/>') == (None, None)
    laughs = b'<!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><svg width="&b;"/>'
    assert images.read_svg(laughs) is None
    assert images.read_svg(b"<html/>") is None and images.read_svg(b"not xml at all <") is None
