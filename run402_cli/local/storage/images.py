"""What an uploaded image is, read with Pillow: its size, format and traits, a short EXIF
summary, a blurhash, and its thumb / medium / large WebP variants. SVG is read with expat.

Why it is built this way:
- Hostile input is the normal case. Pillow opens only the formats asked for (JPEG, PNG, WebP,
  GIF, BMP, TIFF: no exotic decoder ever sees upload bytes), and the pixel count is checked on
  the header, before a pixel is decoded: past `MAX_PIXELS` (64 megapixels) the file is stored
  as it is, with no image fields, so a small file claiming 100000x100000 costs nothing.
  Anything Pillow cannot decode is not an image to us (None), never a failed deploy.
- JPEGs are decoded at the smallest scale that still covers the largest variant (`draft`),
  so a 24-megapixel photo costs a quarter of its pixels or less.
- Variants are made from the first frame (animated GIF/WebP), turned by the EXIF orientation
  (so they display upright everywhere), converted to 8-bit RGB(A), never upscaled, and encoded
  as WebP without EXIF or XMP; an sRGB/RGB colour profile is carried over.
- The reported width/height are the stored pixels; `image_info.orientation` says how a
  viewer turns them.
- SVG: no DTD, no entities (a DOCTYPE or an entity declaration stops the parse), only the
  root element is read, and only plain numbers (`width="120"`, `"120px"`, or the viewBox).
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from typing import Any

from run402_cli.wire.assets import VARIANT_WIDTHS

__all__ = ["MAX_PIXELS", "Picture", "read_image", "read_svg"]

MAX_PIXELS = 64_000_000
_FORMATS = ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"]  # a JPEG with an MPF index opens as MPO
_FORMAT_NAMES = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp",
                 "TIFF": "tiff"}
_COLOR_SPACES = {"1": "bilevel", "L": "gray", "LA": "gray", "La": "gray", "I": "gray", "F": "gray", "P": "palette",
                 "PA": "palette", "RGB": "rgb", "RGBA": "rgb", "RGBa": "rgb", "RGBX": "rgb", "CMYK": "cmyk",
                 "YCbCr": "ycbcr", "LAB": "lab", "HSV": "hsv"}
_BIT_DEPTH = {"1": 1, "I": 32, "F": 32}
_EXIF_TEXT = {0x010F: "Make", 0x0110: "Model", 0x0131: "Software", 0x0132: "DateTime", 0x013B: "Artist",
              0x8298: "Copyright"}
_EXIF_IFD_TEXT = {0x9003: "DateTimeOriginal", 0x9004: "DateTimeDigitized", 0xA434: "LensModel",
                  0xA433: "LensMake"}
_EXIF_TEXT_MAX = 128
_WEBP_QUALITY = 80


@dataclass
class Picture:
    """A decoded raster image's facts, and its variants as (name, WebP bytes, width, height)."""

    width_px: int
    height_px: int
    image_format: str
    image_info: dict[str, Any]
    orientation: int | None
    image_exif: dict[str, Any] | None
    blurhash: str | None
    variants: list[tuple[str, bytes, int, int]] = field(default_factory=list)


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value[:_EXIF_TEXT_MAX] or None


def _exif_summary(exif: Any) -> dict[str, Any] | None:
    """A few well-known tags as short strings, whether GPS data is there, and how many tags."""
    if not exif:
        return None
    out: dict[str, Any] = {}
    for tag, name in _EXIF_TEXT.items():
        if (text := _text(exif.get(tag))) is not None:
            out[name] = text
    ifd = exif.get_ifd(0x8769)
    for tag, name in _EXIF_IFD_TEXT.items():
        if (text := _text(ifd.get(tag))) is not None:
            out[name] = text
    gps = exif.get_ifd(0x8825)
    out["has_gps"] = bool(gps)
    out["tag_count"] = len(exif) + len(ifd) + len(gps)
    return out


def _has_alpha(im: Any) -> bool:
    return im.mode in ("RGBA", "LA", "La", "PA", "RGBa") or "transparency" in im.info


def _bit_depth(im: Any, data: bytes) -> int | None:
    if im.format == "PNG" and data[12:16] == b"IHDR":
        return data[24]  # IHDR's own field: Pillow widens or narrows some depths
    if im.mode.startswith("I;16"):
        return 16
    return _BIT_DEPTH.get(im.mode, 8 if im.mode in _COLOR_SPACES else None)


def _rgb(im: Any, alpha: bool) -> Any:
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        im = im.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    return im.convert("RGBA" if alpha else "RGB")


_REDUCIBLE = ("L", "LA", "RGB", "RGBA", "CMYK", "I", "F")


def _orientation(exif: Any) -> int | None:
    value = exif.get(0x0112) if exif else None
    return value if isinstance(value, int) and 1 <= value <= 8 else None


def _upright(im: Any, orientation: int | None, alpha: bool, need: int) -> Any:
    """The first frame, shrunk by an integer factor while it stays `need` wide (upright),
    turned as its EXIF orientation says, in 8-bit RGB(A)."""
    from PIL import Image

    turned = orientation in (5, 6, 7, 8)
    k = (im.height if turned else im.width) // need
    if k >= 2:
        im = (im if im.mode in _REDUCIBLE else _rgb(im, alpha)).reduce(k)
    if orientation not in (None, 1):
        im = im.transpose({2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                           4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                           6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                           8: Image.Transpose.ROTATE_90}[orientation])
    return _rgb(im, alpha)


def _webp_variants(frame: Any, upright: tuple[int, int], icc: bytes | None) -> list[tuple[str, bytes, int, int]]:
    from PIL import Image

    made, current = [], frame
    for name, target in reversed(VARIANT_WIDTHS):  # large first: each is made from the one before
        w = min(target, upright[0])
        h = max(1, round(upright[1] * w / upright[0]))
        if current.size != (w, h):
            current = current.resize((w, h), Image.Resampling.LANCZOS, reducing_gap=3.0)
        buf = io.BytesIO()
        current.save(buf, "WEBP", quality=_WEBP_QUALITY, method=4, **({"icc_profile": icc} if icc else {}))
        made.append((name, buf.getvalue(), w, h))
    return list(reversed(made))


def read_image(data: bytes, *, variants: bool, exif_summary: bool) -> Picture | None:
    """The facts (and, with `variants`, the WebP variants) of a raster image; None when the
    bytes are not one of the formats read here, are corrupt, or claim too many pixels."""
    from PIL import Image

    need = VARIANT_WIDTHS[-1][1] if variants else 32
    try:
        with Image.open(io.BytesIO(data), formats=_FORMATS) as im:
            width, height = im.size
            if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
                return None
            fmt = im.format
            frames = int(getattr(im, "n_frames", 1) or 1) if fmt in ("GIF", "WEBP", "PNG") else 1
            if frames > 1:
                im.seek(0)
            info = {"has_alpha": _has_alpha(im), "color_space": _COLOR_SPACES.get(im.mode.split(";")[0]),
                    "animated": frames > 1, "frame_count": frames, "bit_depth": _bit_depth(im, data),
                    "orientation": None, "has_icc_profile": bool(im.info.get("icc_profile"))}
            exif = im.getexif()
            orientation = _orientation(exif)
            turned = orientation in (5, 6, 7, 8)
            upright_size = (height, width) if turned else (width, height)
            if fmt in ("JPEG", "MPO"):  # decode at 1/2, 1/4 or 1/8 when that still covers `need`
                scale = min(1.0, need / upright_size[0])
                im.draft("RGB", (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))))
            im.load()
            if fmt == "PNG" and not exif:  # an eXIf chunk after the pixels is only seen now
                exif = im.getexif()
                orientation = _orientation(exif)
                turned = orientation in (5, 6, 7, 8)
                upright_size = (height, width) if turned else (width, height)
            info["orientation"] = orientation
            summary = _exif_summary(exif) if exif_summary else None
            icc = im.info.get("icc_profile") if im.mode in ("RGB", "RGBA") else None
            frame = _upright(im, orientation, info["has_alpha"], need)
    except Exception:  # noqa: BLE001 - Pillow raises many kinds on hostile bytes; none is fatal here
        return None
    pic = Picture(width_px=width, height_px=height, image_format=_FORMAT_NAMES[fmt], image_info=info,
                  orientation=orientation, image_exif=summary, blurhash=None)
    try:
        if variants:
            pic.variants = _webp_variants(frame, upright_size, icc)
        tiny = (32, max(1, round(32 * frame.height / frame.width))) if frame.width >= frame.height else \
            (max(1, round(32 * frame.width / frame.height)), 32)
        pic.blurhash = blurhash(frame.resize(tiny, Image.Resampling.BILINEAR, reducing_gap=2.0).convert("RGB"))
    except Exception:  # noqa: BLE001 - the facts stand without variants
        pic.variants, pic.blurhash = [], None
    return pic


# -- blurhash (https://blurha.sh: DCT components of a tiny copy, base 83) -----------------------

_B83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def _b83(value: int, length: int) -> str:
    return "".join(_B83[(value // 83 ** (length - i)) % 83] for i in range(1, length + 1))


def _linear(v: int) -> float:
    c = v / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _srgb(v: float) -> int:
    c = max(0.0, min(1.0, v))
    return int(c * 12.92 * 255 + 0.5) if c <= 0.0031308 else int((1.055 * c ** (1 / 2.4) - 0.055) * 255 + 0.5)


def blurhash(im: Any) -> str:
    """The blurhash of an RGB image (already tiny: every pixel is visited), 4x3 components
    (3x4 for a portrait)."""
    nx, ny = (4, 3) if im.width >= im.height else (3, 4)
    w, h = im.size
    table = [_linear(v) for v in range(256)]
    raw = im.tobytes()
    lin = [(table[raw[k]], table[raw[k + 1]], table[raw[k + 2]]) for k in range(0, len(raw), 3)]
    cx = [[math.cos(math.pi * i * x / w) for x in range(w)] for i in range(nx)]
    cy = [[math.cos(math.pi * j * y / h) for y in range(h)] for j in range(ny)]
    factors = []
    for j in range(ny):
        for i in range(nx):
            norm = (1 if i == j == 0 else 2) / (w * h)
            r = g = b = 0.0
            for y in range(h):
                row, by = y * w, cy[j][y]
                for x in range(w):
                    basis = cx[i][x] * by
                    pr, pg, pb = lin[row + x]
                    r += basis * pr
                    g += basis * pg
                    b += basis * pb
            factors.append((r * norm, g * norm, b * norm))
    dc, ac = factors[0], factors[1:]
    out = _b83((nx - 1) + (ny - 1) * 9, 1)
    peak = max((abs(v) for f in ac for v in f), default=0.0)
    quant = max(0, min(82, int(math.floor(peak * 166 - 0.5)))) if ac else 0
    top = (quant + 1) / 166 if ac else 1.0
    out += _b83(quant, 1) + _b83((_srgb(dc[0]) << 16) + (_srgb(dc[1]) << 8) + _srgb(dc[2]), 4)

    def q(v: float) -> int:
        return max(0, min(18, int(math.floor(math.copysign(abs(v / top) ** 0.5, v) * 9 + 9.5))))

    return out + "".join(_b83(q(r) * 361 + q(g) * 19 + q(b), 2) for r, g, b in ac)


# -- SVG ---------------------------------------------------------------------------------------

_SVG_PREFIX = 256 * 1024
_LENGTH = re.compile(r"\s*([0-9]*\.?[0-9]+)\s*(?:px)?\s*")


class _Stop(Exception):
    pass


def _length(value: str | None) -> float | None:
    m = _LENGTH.fullmatch(value) if value else None
    return float(m.group(1)) if m else None


def read_svg(data: bytes) -> tuple[int | None, int | None] | None:
    """(width, height) of an SVG's root element, (None, None) when they are not plain numbers;
    None when the bytes are not an SVG document (or declare a DTD or entities)."""
    from xml.parsers import expat

    root: dict[str, str] = {}
    parser = expat.ParserCreate()

    def doctype(_name: str, _system: Any, _public: Any, internal_subset: int) -> None:
        if internal_subset:  # where entities are declared: never read
            raise _Stop("dtd")

    def entity(*_args: Any) -> None:
        raise _Stop("entity")

    def start(name: str, attrs: dict[str, str]) -> None:
        root.update(attrs)
        root["\0name"] = name
        raise _Stop("root")

    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity
    parser.StartElementHandler = start
    try:
        parser.Parse(data[:_SVG_PREFIX], len(data) <= _SVG_PREFIX)
    except _Stop:
        pass
    except expat.ExpatError:
        return None
    if root.get("\0name", "").rpartition(":")[2] != "svg":
        return None
    w, h = _length(root.get("width")), _length(root.get("height"))
    if w is None or h is None:
        box = re.split(r"[\s,]+", root.get("viewBox", "").strip())
        try:
            w, h = (float(box[2]), float(box[3])) if len(box) == 4 else (None, None)
        except ValueError:
            w = h = None
    if w is None or h is None or not (0 < w <= 1e6 and 0 < h <= 1e6):
        return None, None
    return max(1, round(w)), max(1, round(h))
