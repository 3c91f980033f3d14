"""The self-served upload target `PUT /_upload/<upload_id>/<part>`: where the hosted API hands
out presigned S3 URLs, the gateway signs its own.

The URL carries its own authority: an HMAC, with an installation secret, over the upload, the
part, the expiry, the part's exact length and, for a single-part object, its declared SHA-256.
So a PUT needs no database lookup, and no other auth (the real client PUTs with plain fetch).

Two ways bytes land, both ending in what the content commit checks (content.py):
- **A single-part object** (every file of a site, any object up to 16 MiB) is hashed while it
  arrives (one of at most 64 KiB, nearly every file of a site, whole in memory once it has,
  on the event loop) and, if it is exactly the declared bytes, published into the CAS by the
  PUT itself.
  What the commit then needs is proof that *this upload* delivered those bytes (knowing a
  digest is not owning content): `staging/<upload_id>.ok`, a name given only after the bytes
  were verified, usually another link to the CAS object's inode (no copy). Wrong bytes are
  kept as a staged part instead, so the commit reports the mismatch as it always did.
- **A small object the CAS already holds** (the same file in another project, say) is checked
  in memory, and its proof is one more name for the stored file: nothing is written.
- **A part of a multipart object** waits in `staging/<upload_id>/part-<n>`; the commit
  assembles and verifies the object.
Neither is fsynced here: the commit makes its whole batch durable with one sync before the
database records any of it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

from run402_cli.local.context import GatewayContext
from run402_cli.local.deploy.cas import SHA256_RE, Cas
from run402_cli.local.errors import GatewayError
from run402_cli.local.runtime.layout import LocalLayout

__all__ = ["UploadContext", "proof_path", "route", "upload_url"]

# Received bytes go to the writer thread in slices of this size: a part costs a bounded buffer.
_SPILL = 1024 * 1024
# A body this small is written on the event loop: into the page cache that is a few
# microseconds, and a hop to a worker thread and back costs more than the write.
_INLINE_MAX = 64 * 1024
# Temporary names: unique within this process by the counter (two PUTs of one upload at once
# never share one), and apart from a crashed earlier gateway's leftovers by the pid. Not random:
# nothing is guessable that matters (staging is the gateway's own, 0700), and a random suffix
# was a getrandom(2) per PUT.
_TMP_SEQ = itertools.count()


def _tmp_name(stem: str) -> str:
    return f"{stem}.{os.getpid()}-{next(_TMP_SEQ)}.tmp"


class UploadContext:
    """What put_part reads of a GatewayContext: all the upload process has (runtime/uploads.py)."""

    def __init__(self, cas_dir: str) -> None:
        self.cas_dir = cas_dir


def route() -> Route:
    """The upload route, for the gateway's route table and the upload process alike."""
    return Route("/_upload/{upload_id}/{part:int}", put_part, methods=["PUT"])


def _secret(request: Request) -> bytes:
    state = request.app.state
    if not hasattr(state, "upload_url_secret"):
        # cas_dir is <local dir>/cas (runtime/layout.py); the key sits with the other installation secrets.
        state.upload_url_secret = LocalLayout(Path(state.ctx.cas_dir).parent).secrets()["upload_url_secret"].encode()
    return state.upload_url_secret


def _sign(secret: bytes, upload_id: str, part: int, expires: int, length: int, sha256: str) -> str:
    return hmac.new(secret, f"{upload_id}/{part}/{expires}/{length}/{sha256}".encode(), hashlib.sha256).hexdigest()


def upload_url(request: Request, base: str, upload_id: str, part: int, expires: int, length: int,
               sha256: str | None) -> str:
    """The signed URL for one part; `sha256` only for a single-part object."""
    sig = _sign(_secret(request), upload_id, part, expires, length, sha256 or "")
    sha = f"&sha={sha256}" if sha256 else ""
    return f"{base}/_upload/{upload_id}/{part}?expires={expires}&len={length}{sha}&sig={sig}"


def proof_path(cas: Cas, upload_id: str) -> Path:
    """Exists only once a single-part PUT delivered exactly the declared bytes."""
    return cas.staging_root / f"{upload_id}.ok"


class _Received:
    """One body being received into a temporary file under staging, hashed as it is written."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.md5, self.sha = hashlib.md5(), hashlib.sha256()
        self._fh: Any = None

    def write(self, data: bytes) -> None:
        if self._fh is None:
            self._fh = os.fdopen(_create(str(self.tmp)), "wb")
        self.md5.update(data)  # hashlib releases the GIL on large buffers
        self.sha.update(data)
        self._fh.write(data)

    def close(self, data: bytes) -> None:
        self.write(data)
        self._fh.close()

    def discard(self) -> None:
        if self._fh is not None:  # else no file was ever made
            self._fh.close()
            self.tmp.unlink(missing_ok=True)


def _finish_part(out: _Received, data: bytes, final: Path, claimed: bytes | None) -> bool:
    """A multipart part: keep it unless the client's checksum header disagrees."""
    out.close(data)
    if claimed is not None and not hmac.compare_digest(claimed, out.sha.digest()):
        out.discard()
        return False
    os.replace(out.tmp, final)
    return True


def _finish_object(out: _Received, data: bytes, cas: Cas, upload_id: str, sha256: str,
                   claimed: bytes | None) -> bool:
    """A single-part object: publish it and leave the proof, or stage it for the commit's verdict."""
    out.close(data)
    digest = out.sha.digest()
    if claimed is not None and not hmac.compare_digest(claimed, digest):
        out.discard()
        return False
    if digest.hex() != sha256:  # the commit names the bytes it got, as it does for any mismatch
        staging = cas.staging_path(upload_id)
        staging.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.replace(out.tmp, staging / "part-1")
        return True
    cas.publish(out.tmp, sha256)
    os.replace(out.tmp, proof_path(cas, upload_id))
    return True


def _create(path: str) -> int:
    """A new temporary file under staging, open for writing, 0644 as a CAS object is.
    Never an existing file opened for writing: a leftover of an earlier gateway under the same
    name (same pid, same count) may be a second name of a stored object, and writing through it
    would change the object. Such a name is dropped (the object keeps its own) and made anew."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        return os.open(path, flags, 0o644)
    except FileNotFoundError:  # the first upload, or the first part, under this directory
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    except FileExistsError:
        os.unlink(path)
    return os.open(path, flags, 0o644)


def _write_new(path: str, data: bytes) -> None:
    """A new file (see _create) holding `data`."""
    fd = _create(path)
    try:
        os.fchmod(fd, 0o644)  # whatever the umask took away
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _store_small(cas: Cas, upload_id: str, sha256: str, data: bytes, claimed: bytes | None) -> str | None:
    """A whole single-part object of at most _INLINE_MAX bytes, on the event loop: the ETag (md5
    hex), or None if the client's checksum header disagrees with the bytes (nothing kept).
    Hashed once, in memory. If they are the declared bytes and the CAS already holds them (the
    same file in another project, an earlier deploy), the proof is one more name for the stored
    file: nothing is written. Else one new file, linked into the CAS and renamed to the proof.
    Other bytes are staged as part 1, for the commit to report the mismatch."""
    digest = hashlib.sha256(data).digest()
    if claimed is not None and not hmac.compare_digest(claimed, digest):
        return None
    etag = hashlib.md5(data).hexdigest()
    staging_root = str(cas.staging_root)
    if digest.hex() != sha256:
        staging = os.path.join(staging_root, upload_id)
        tmp = os.path.join(staging, _tmp_name("part-1"))  # _create makes the directory, 0700
        _write_new(tmp, data)
        os.replace(tmp, os.path.join(staging, "part-1"))
        return etag
    proof = str(proof_path(cas, upload_id))
    try:
        os.link(cas.file(sha256), proof)
        return etag
    except FileExistsError:  # this upload's PUT, sent again: its proof is there
        return etag
    except FileNotFoundError:  # not stored yet (or no staging directory yet): write it
        pass
    tmp = os.path.join(staging_root, _tmp_name(upload_id))
    try:
        _write_new(tmp, data)
        cas.publish(tmp, sha256, chmod=False)
        os.replace(tmp, proof)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return etag


def _query_int(params: dict[str, str], name: str) -> int:
    value = params.get(name, "")
    return int(value) if value.isdigit() and len(value) <= 19 else -1


class _Stored:
    """The answer to a part delivered: 200, its ETag, no body; the headers Starlette's Response
    sent, built without it (one of these per file of a deploy)."""

    status_code = 200

    def __init__(self, md5_hex: str) -> None:
        self.headers = [(b"etag", f'"{md5_hex}"'.encode("ascii")), (b"content-length", b"0")]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.headers})
        await send({"type": "http.response.body", "body": b""})


_CAS: dict[str, Cas] = {}


def _cas(ctx: GatewayContext | UploadContext) -> Cas:
    cas = _CAS.get(ctx.cas_dir)
    if cas is None:
        cas = _CAS[ctx.cas_dir] = Cas(ctx.cas_dir)
    return cas


async def put_part(request: Request) -> _Stored:
    """S3-like: raw bytes in, 200 + ETag (quoted md5 of the part) out."""
    upload_id = request.path_params["upload_id"]
    part = request.path_params["part"]
    # What Starlette's query_params hold (the last of a repeated name), without building them.
    params = dict(parse_qsl(request.scope["query_string"].decode("latin-1"), keep_blank_values=True))
    expires, expected = _query_int(params, "expires"), _query_int(params, "len")
    sha256 = params.get("sha", "")
    sig = params.get("sig", "")
    if sha256 and not SHA256_RE.match(sha256) or not hmac.compare_digest(
            sig.encode(), _sign(_secret(request), upload_id, part, expires, expected, sha256).encode()):
        raise GatewayError(403, "UPLOAD_URL_INVALID", "The upload URL signature is not valid", category="auth")
    if expires < time.time():
        raise GatewayError(403, "UPLOAD_URL_EXPIRED", "The upload URL has expired", category="auth",
                           hint="Request a new content plan (POST /content/v1/plans)")
    claimed = request.headers.get("x-amz-checksum-sha256")
    try:
        claimed_digest = None if claimed is None else base64.b64decode(claimed, validate=True)
    except ValueError:
        claimed_digest = b""  # matches no digest: refused below, after the body is read
    cas = _cas(request.app.state.ctx)
    staging = cas.staging_path(upload_id)  # validates the id
    inline = expected <= _INLINE_MAX
    if inline and sha256:
        return await _put_small(request, cas, upload_id, part, expected, sha256, claimed_digest)
    if sha256:
        out = _Received(cas.staging_root / _tmp_name(upload_id))
        finish: Any = lambda data: _finish_object(out, data, cas, upload_id, sha256, claimed_digest)  # noqa: E731
    else:
        out = _Received(staging / _tmp_name(f"part-{part}"))
        finish = lambda data: _finish_part(out, data, staging / f"part-{part}", claimed_digest)  # noqa: E731
    pending, received, kept = bytearray(), 0, False
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > expected:
                raise _size_mismatch(part, expected)
            pending += chunk
            if len(pending) >= _SPILL:
                await run_in_threadpool(out.write, bytes(pending))
                pending.clear()
        if received != expected:
            raise _size_mismatch(part, expected, received)
        data = bytes(pending)
        kept = finish(data) if inline else await run_in_threadpool(finish, data)
        if not kept:
            raise _checksum_mismatch(upload_id, part)
    finally:
        if not kept:
            if inline:
                out.discard()
            else:
                await run_in_threadpool(out.discard)
    return _Stored(out.md5.hexdigest())


def _checksum_mismatch(upload_id: str, part: str) -> GatewayError:
    return GatewayError(400, "CONTENT_DIGEST_MISMATCH", "x-amz-checksum-sha256 does not match the bytes received",
                        details={"upload_id": upload_id, "part_number": part})


def _size_mismatch(part: str, expected: int, received: int | None = None) -> GatewayError:
    details = {"expected": expected} if received is None else {"expected": expected, "received": received}
    return GatewayError(400, "CONTENT_SIZE_MISMATCH", f"Part {part} must be exactly {expected} bytes",
                        details=details)


async def _put_small(request: Request, cas: Cas, upload_id: str, part: str, expected: int, sha256: str,
                     claimed: bytes | None) -> _Stored:
    """A single-part object of at most _INLINE_MAX bytes: read whole, then _store_small."""
    pending, received = bytearray(), 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > expected:
            raise _size_mismatch(part, expected)
        pending += chunk
    if received != expected:
        raise _size_mismatch(part, expected, received)
    etag = _store_small(cas, upload_id, sha256, bytes(pending), claimed)
    if etag is None:
        raise _checksum_mismatch(upload_id, part)
    return _Stored(etag)
