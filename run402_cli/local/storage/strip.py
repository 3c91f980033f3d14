"""EXIF and XMP taken out of image bytes without re-encoding a pixel (`exif_policy: "strip"`).

What a user expects of "strip": the camera, the time and above all the GPS position are not
served. What they do not expect: a photo that turns sideways, or a re-encoded (softer,
bigger) picture. So the metadata containers are cut out of the file and everything else is
copied byte for byte:
- JPEG: APP1 `Exif` and XMP (incl. extended XMP) segments, APP13 Photoshop/IPTC, the APP2 MPF
  index, and whatever follows the primary image's end marker (an MPO's second picture with
  its own EXIF, a motion photo's video) are dropped;
- PNG: `eXIf`, and tEXt/zTXt/iTXt chunks holding XMP or a "Raw profile type" EXIF/IPTC copy;
- WebP: the `EXIF` and `XMP ` chunks, with the VP8X flags and the RIFF size fixed.
When the picture needs its EXIF Orientation to display upright (2..8), a minimal EXIF holding
that one tag is written back in place of the original.

`strip(data, orientation)` returns the new bytes and whether anything was removed; it raises
`CannotStrip(note)` for a format it cannot strip losslessly (GIF, TIFF, SVG, HEIC...) or for
bytes it cannot parse: the caller then serves the bytes as uploaded and says so.
"""

from __future__ import annotations

import struct
import zlib

__all__ = ["CannotStrip", "strip"]

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_JPEG_XMP = (b"http://ns.adobe.com/xap/1.0/\x00", b"http://ns.adobe.com/xmp/extension/\x00")
_PNG_TEXT_KEYWORDS = {b"XML:com.adobe.xmp", b"Raw profile type exif", b"Raw profile type APP1",
                      b"Raw profile type xmp", b"Raw profile type iptc", b"Raw profile type 8bim"}
_VP8X_EXIF, _VP8X_XMP = 0x08, 0x04


class CannotStrip(Exception):
    """The bytes are served as uploaded; `note` says why."""

    def __init__(self, note: str) -> None:
        super().__init__(note)
        self.note = note


def _tiff_orientation(orientation: int) -> bytes:
    """A big-endian TIFF structure with one IFD holding only Orientation (SHORT)."""
    return (b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
            + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0))


def _keep(orientation: int | None) -> int | None:
    return orientation if isinstance(orientation, int) and 2 <= orientation <= 8 else None


def strip(data: bytes, orientation: int | None = None) -> tuple[bytes, bool]:
    """(bytes without EXIF/XMP, True if anything was removed). Raises CannotStrip."""
    if data.startswith(b"\xff\xd8"):
        out = _jpeg(data, _keep(orientation))
    elif data.startswith(_PNG_SIG):
        out = _png(data, _keep(orientation))
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        out = _webp(data, _keep(orientation))
    elif data[:4] in (b"GIF8",):
        raise CannotStrip("GIF has no EXIF; its comment and XMP blocks are not removed, the bytes are served "
                          "as uploaded")
    elif data[:4] in (b"II*\x00", b"MM\x00*"):
        raise CannotStrip("TIFF keeps EXIF inside its own directory; it cannot be removed without re-encoding, "
                          "so the bytes are served as uploaded")
    elif data[:2] == b"BM":
        return data, False  # BMP has no metadata container
    else:
        raise CannotStrip("EXIF can only be stripped from JPEG, PNG and WebP; the bytes are served as uploaded")
    return out, out != data


# -- JPEG --------------------------------------------------------------------------------------

def _jpeg(data: bytes, orientation: int | None) -> bytes:
    out = [data[:2]]
    pos, n = 2, len(data)
    replaced = orientation is None
    while True:
        if pos + 4 > n or data[pos] != 0xFF:
            raise CannotStrip("the JPEG's segments could not be read; the bytes are served as uploaded")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:  # start of scan: image data (and the tables between scans) up to the end marker
            if not replaced:
                out.append(_jpeg_exif_segment(orientation))  # type: ignore[arg-type]
            out.append(data[pos:_jpeg_image_end(data, pos)])
            return b"".join(out)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            out.append(data[pos:pos + 2])
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if length < 2 or pos + 2 + length > n:
            raise CannotStrip("a JPEG segment runs past the end of the file; the bytes are served as uploaded")
        body = data[pos + 4:pos + 2 + length]
        drop = ((marker == 0xE1 and (body.startswith(b"Exif\x00") or body.startswith(_JPEG_XMP)))
                or (marker == 0xED and body.startswith(b"Photoshop 3.0\x00"))
                or (marker == 0xE2 and body.startswith(b"MPF\x00")))
        if drop:
            if not replaced and marker == 0xE1 and body.startswith(b"Exif\x00"):
                out.append(_jpeg_exif_segment(orientation))  # type: ignore[arg-type]
                replaced = True
        else:
            out.append(data[pos:pos + 2 + length])
        pos += 2 + length


def _jpeg_image_end(data: bytes, pos: int) -> int:
    """The offset just past the primary image's end marker (EOI), `pos` being its first SOS;
    the file's end if it has none. Walks the scans: in entropy-coded data 0xFF is followed by
    0x00 (stuffing), a restart marker or a fill byte; any other marker is a segment."""
    n = len(data)
    while True:  # at a marker with a length (SOS, DHT, DQT, DRI, APPn... between scans)
        if pos + 4 > n:
            return n
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        pos += 2 + length
        while True:
            i = data.find(b"\xff", pos)
            if i < 0 or i + 1 >= n:
                return n
            nxt = data[i + 1]
            if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:
                pos = i + 2
            elif nxt == 0xFF:
                pos = i + 1
            elif nxt == 0xD9:
                return i + 2
            else:
                pos = i
                break


def _jpeg_exif_segment(orientation: int) -> bytes:
    body = b"Exif\x00\x00" + _tiff_orientation(orientation)
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


# -- PNG ---------------------------------------------------------------------------------------

def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _png(data: bytes, orientation: int | None) -> bytes:
    out = [_PNG_SIG]
    pos, n = len(_PNG_SIG), len(data)
    pending_exif = orientation is not None
    while True:
        if pos + 12 > n:
            raise CannotStrip("the PNG ends before its IEND chunk; the bytes are served as uploaded")
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if end > n:
            raise CannotStrip("a PNG chunk runs past the end of the file; the bytes are served as uploaded")
        body = data[pos + 8:pos + 8 + length]
        if kind in (b"IDAT", b"fdAT", b"IEND") and pending_exif:
            out.append(_png_chunk(b"eXIf", _tiff_orientation(orientation)))  # type: ignore[arg-type]
            pending_exif = False
        drop = kind == b"eXIf" or (kind in (b"tEXt", b"zTXt", b"iTXt")
                                   and body.split(b"\x00", 1)[0] in _PNG_TEXT_KEYWORDS)
        if not drop:
            out.append(data[pos:end])
        pos = end
        if kind == b"IEND":
            out.append(data[pos:])  # trailing bytes are copied as they were
            return b"".join(out)


# -- WebP --------------------------------------------------------------------------------------

def _webp(data: bytes, orientation: int | None) -> bytes:
    (riff_size,) = struct.unpack("<I", data[4:8])
    if riff_size + 8 > len(data) or riff_size < 4:
        raise CannotStrip("the WebP's RIFF size is wrong; the bytes are served as uploaded")
    chunks: list[tuple[bytes, bytes]] = []
    pos, end = 12, 8 + riff_size
    while pos < end:
        if pos + 8 > end:
            raise CannotStrip("a WebP chunk header is cut short; the bytes are served as uploaded")
        kind = data[pos:pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4:pos + 8])
        if pos + 8 + size > end:
            raise CannotStrip("a WebP chunk runs past the end of the file; the bytes are served as uploaded")
        chunks.append((kind, data[pos + 8:pos + 8 + size]))
        pos += 8 + size + (size & 1)
    if not chunks or chunks[0][0] != b"VP8X" or len(chunks[0][1]) < 10:
        return data  # a simple (lossy or lossless) WebP carries no metadata
    kept = [(k, b) for k, b in chunks if k not in (b"EXIF", b"XMP ")]
    if orientation is not None:
        kept.append((b"EXIF", _tiff_orientation(orientation)))
    if len(kept) == len(chunks) and orientation is None:
        return data
    flags = kept[0][1][0] & ~(_VP8X_EXIF | _VP8X_XMP)
    if orientation is not None:
        flags |= _VP8X_EXIF
    kept[0] = (b"VP8X", bytes([flags]) + kept[0][1][1:])
    body = b"".join(k + struct.pack("<I", len(b)) + b + (b"\x00" if len(b) & 1 else b"") for k, b in kept)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body + data[end:]
