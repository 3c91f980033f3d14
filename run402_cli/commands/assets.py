"""`run402 assets put|get|ls|rm|sign|diagnose`: a project's blob storage (spec/api-deploy.md §3).

`put` is a deploy of an assets-only release (`deploy/assets.py`: hash by streaming, plan,
upload only the bytes the gateway lacks, commit) and prints the SDK AssetRef of each file plus
the HTML `tags` that embed it (our addition). The other verbs call `/storage/v1/*` with the
project's service key (`api/assets.py`). The project is `--project`, else `RUN402_PROJECT`,
else the active project. `blob` is the same group under its older name (hidden).

Every flag is checked before any request (exit 1, one JSON line on stderr): keys
(`wire.assets.asset_key_problem`), `--content-type`, `--meta`, `--exif-policy`, `--limit`
1..1000, `--sort`, `--filter`, `--ttl` 60..604800, several files with a fixed `--key`, a key
given twice, a missing or non-regular file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

import typer

from run402_cli import output
from run402_cli.commands._options import client, group, positive_int, project_opt, resolve_project, settings
from run402_cli.errors import UsageError

__all__ = [
    "DiagnoseOptions", "GetOptions", "LsOptions", "PutOptions", "RmOptions", "SignOptions", "app", "blob_app",
    "register", "resolve_assets_project",
]

_HELP = "Assets (blob storage): put files (public or private, CDN URLs, SRI), get, ls, rm, sign, diagnose."
app = group(help=_HELP)
blob_app = group(help=_HELP + " Same as `run402 assets`.")

META_FORMS = "key=value"


def resolve_assets_project(ctx: typer.Context, project: Optional[str]) -> tuple[str, dict[str, Any]]:
    """`--project`, else RUN402_PROJECT, else the active project (it must be in the keystore)."""
    chosen = project or settings(ctx).env.get("RUN402_PROJECT") or None
    return resolve_project(ctx, chosen)


def _int_in(value: Optional[str], flag: str, lo: int, hi: int) -> Optional[int]:
    """A strict decimal integer in lo..hi, or None when absent (BAD_FLAG otherwise)."""
    if value is None:
        return None
    text = value[1:] if value.startswith("-") else value
    if not text.isdigit() or not text.isascii() or len(text.lstrip("0")) > 16:
        raise UsageError(f"{flag} must be an integer, got: {value}", code="BAD_FLAG",
                         details={"flag": flag, "value": value})
    n = int(value)
    if not lo <= n <= hi:
        raise UsageError(f"{flag} must be between {lo} and {hi}, got: {n}", code="BAD_FLAG",
                         details={"flag": flag, "value": n, "min": lo, "max": hi})
    return n


def _key(value: Optional[str], usage: str, *, what: str = "Key") -> str:
    from run402_cli.wire.assets import asset_key_problem

    if not value:
        raise UsageError(f"Missing <{what.lower()}>.", hint=usage)
    problem = asset_key_problem(value)
    if problem:
        raise UsageError(f"Asset key {value[:80]!r} {problem}.", code="BAD_USAGE", hint=usage,
                         details={"key": value[:200], "reason": problem})
    return value


def _pairs(values: Optional[List[str]], flag: str) -> list[tuple[str, str]]:
    """`k=v` flags -> (k, v); the key is trimmed and must be non-empty."""
    out = []
    for raw in values or []:
        eq = raw.find("=")
        key = raw[:eq].strip() if eq > 0 else ""
        if not key:
            raise UsageError(f"{flag} takes key=value with a non-empty key, not {raw[:80]!r}",
                             code="BAD_FLAG", details={"flag": flag, "value": raw[:200]})
        out.append((key, raw[eq + 1:]))
    return out


# --- put ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PutOptions:
    project_id: str
    anon_key: Optional[str]
    files: tuple[Any, ...]  # deploy.assets.AssetFile
    visibility: str = "public"
    immutable: bool = False
    metadata: Optional[dict[str, Any]] = None
    exif_policy: Optional[str] = None
    json_events: bool = False
    quiet: bool = False
    concurrency: Optional[int] = None


def put(
    ctx: typer.Context,
    files: Optional[List[str]] = typer.Argument(None, metavar="FILE...", help="One or more files to upload."),
    project: Optional[str] = project_opt(),
    key: Optional[str] = typer.Option(
        None, "--key", help="Destination key (default: the file's name); a trailing '/' makes it a prefix."),
    content_type: Optional[str] = typer.Option(
        None, "--content-type", help="MIME type for every file (default: from the key's extension)."),
    private: bool = typer.Option(False, "--private", help="Private: no public URL; read with the service key or a signed URL."),
    immutable: bool = typer.Option(
        False, "--immutable", help="Also publish a content-addressed URL (cdnUrl) that never changes, for SRI tags."),
    meta: Optional[List[str]] = typer.Option(
        None, "--meta", help="Metadata key=value (repeatable): a,b is a list, true/false a boolean, 3 a number."),
    exif_policy: Optional[str] = typer.Option(
        None, "--exif-policy", help="keep (default) or strip: serve JPEG/PNG/WebP without EXIF/XMP (GPS, camera), "
                                    "losslessly."),
    json_events: bool = typer.Option(False, "--json", help="NDJSON on stdout: a start and a done event per file, no array."),
    concurrency: Optional[str] = typer.Option(None, "--concurrency", help="Parallel part uploads (default 8)."),
    no_resume: bool = typer.Option(False, "--no-resume", help="Accepted for compatibility; uploads are planned afresh."),
    quiet: bool = typer.Option(False, "--quiet", help="No deploy progress events on stderr."),
) -> None:
    """Upload files as assets through one deploy: only bytes the project lacks are sent.

    Prints [{file, key, url, cdnUrl, sri, etag, ..., tags}]. Uploads are mutable unless
    --immutable (which adds cdnUrl and the <script>/<link> tags). Images also get width_px,
    height_px, image_format, displayUrl, an <img> tag and, when public, WebP variants
    (thumbUrl, variants, a <picture> tag). A key given twice, or --key without a trailing
    '/' for several files, is refused before anything is sent.

    Example: run402 assets put ./logo.png --immutable --key img/
    """
    import os

    from run402_cli import config
    from run402_cli.deploy.assets import AssetFile, check_files
    from run402_cli.wire.assets import (
        EXIF_POLICIES, asset_content_type, asset_key_problem, coerce_meta_value, content_type_problem,
        metadata_problem,
    )

    usage = "run402 assets put <file> [files...] [--key dest] [--immutable]"
    paths = list(files or [])
    if not paths:
        raise UsageError("Missing <file>: name one or more files to upload.", hint=usage)
    key = key or None
    if len(paths) > 1 and key is not None and not key.endswith("/"):
        raise UsageError("With several files, --key must be a prefix that ends in '/' (each file keeps its name).",
                         code="BAD_USAGE", hint="e.g. --key images/", details={"flag": "--key", "files": len(paths)})
    if content_type is not None and (problem := content_type_problem(content_type)):
        raise UsageError(f"--content-type {problem}, got: {content_type[:80]}", code="BAD_FLAG",
                         details={"flag": "--content-type", "value": content_type[:200]})
    metadata: Optional[dict[str, Any]] = None
    if meta:
        metadata = {k: coerce_meta_value(v) for k, v in _pairs(meta, "--meta")}
        if problem := metadata_problem(metadata):
            raise UsageError(f"metadata {problem}", code="INVALID_ASSET_METADATA",
                             details={"flag": "--meta"})
    if exif_policy is not None and exif_policy not in EXIF_POLICIES:
        raise UsageError(f"--exif-policy is keep or strip, not {exif_policy[:80]!r}", code="BAD_FLAG",
                         details={"flag": "--exif-policy", "value": exif_policy[:200]})
    workers = positive_int(concurrency, "--concurrency", maximum=64)
    del no_resume  # accepted and ignored, as in the official CLI
    project_id, entry = resolve_assets_project(ctx, project)
    chosen: list[AssetFile] = []
    seen: dict[str, str] = {}
    for path in paths:
        name = os.path.basename(path)
        dest = name if key is None else (key + name if key.endswith("/") else key)
        if problem := asset_key_problem(dest):
            raise UsageError(f"Asset key {dest[:80]!r} (for {path}) {problem}.",
                             code="BAD_FLAG" if key is not None else "BAD_USAGE",
                             details={"key": dest[:200], "file": path, "reason": problem,
                                      **({"flag": "--key"} if key is not None else {})})
        if dest in seen:
            raise UsageError(f"Two files would be stored under the same key {dest!r}: {seen[dest]} and {path}.",
                             code="ASSET_DUPLICATE_KEY_IN_PUT", details={"key": dest, "files": [seen[dest], path]},
                             hint="Give each file its own name, or upload them separately.")
        seen[dest] = path
        chosen.append(AssetFile(path=path, key=dest, content_type=asset_content_type(dest, content_type)))
    check_files(chosen)
    config.require_allowance(settings(ctx))
    run_put(PutOptions(project_id=project_id, anon_key=entry.get("anon_key"), files=tuple(chosen),
                       visibility="private" if private else "public", immutable=immutable,
                       metadata=metadata, exif_policy=exif_policy, json_events=json_events, quiet=quiet,
                       concurrency=workers), ctx)


def run_put(opts: PutOptions, ctx: typer.Context) -> None:
    from run402_cli.deploy import assets as deploy_assets
    from run402_cli.deploy import flow
    from run402_cli.errors import Run402Error
    from run402_cli.wire.assets import html_tags

    put_opts = deploy_assets.AssetPut(visibility=opts.visibility, immutable=opts.immutable,
                                      metadata=opts.metadata, exif_policy=opts.exif_policy)
    files = list(opts.files)
    release = deploy_assets.put_release(opts.project_id, files, put_opts)
    if opts.json_events:
        for entry in release.spec["assets"]["put"]:
            output.emit({"event": "start", "key": entry["key"], "size_bytes": entry["size_bytes"]}, compact=True)
    extra = {"workers": opts.concurrency} if opts.concurrency else {}
    with client(ctx) as c:
        with output.event_sink(opts.quiet) as emit:
            outcome = flow.apply(c, release, anon_key=opts.anon_key, on_event=emit, **extra)
        refs = deploy_assets.asset_refs(outcome.plan, files)
        if any(f.content_type.startswith("image/") for f in files):
            try:  # image variants are made at commit: one dry-run plan reads them back
                deploy_assets.refresh_image_refs(refs, flow.dry_run(c, release))
            except Run402Error:
                pass  # best effort: the upload is live either way
    results = []
    for f, ref in zip(files, deploy_assets.sdk_refs(refs, files)):
        item = {"file": f.path, **ref, "tags": html_tags(ref)}
        if opts.json_events:
            output.emit({"event": "done", **item}, compact=True)
        results.append(item)
    if not opts.json_events:
        output.emit(results)


# --- get ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GetOptions:
    project_id: str
    key: str
    output_path: str


def get(
    ctx: typer.Context,
    key: Optional[str] = typer.Argument(None, metavar="KEY", help="The asset's key."),
    output_path: Optional[str] = typer.Option(None, "--output", "-o", help="Write the bytes to this file (required)."),
    project: Optional[str] = project_opt(),
) -> None:
    """Download an asset to a file (streamed; the file appears whole or not at all).

    Example: run402 assets get img/logo.png --output /tmp/logo.png
    """
    import os

    usage = "run402 assets get <key> --output <file>"
    k = _key(key, usage)
    if not output_path:
        raise UsageError("Missing --output <file>: where to write the bytes.", hint=usage, details={"flag": "--output"})
    if os.path.isdir(os.path.expanduser(output_path)):
        raise UsageError(f"--output points to a directory: {output_path}", code="NOT_A_FILE",
                         details={"flag": "--output", "path": output_path})
    project_id, _ = resolve_assets_project(ctx, project)
    run_get(GetOptions(project_id=project_id, key=k, output_path=output_path), ctx)


def run_get(opts: GetOptions, ctx: typer.Context) -> None:
    from run402_cli.api import assets

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        assets.download(c, entry["service_key"], opts.key, opts.output_path, project_id=opts.project_id)
    output.emit({"status": "ok", "key": opts.key, "output": opts.output_path}, compact=True)


# --- ls -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LsOptions:
    project_id: str
    prefix: Optional[str] = None
    limit: Optional[int] = None
    sort: Optional[str] = None
    filters: dict[str, Any] = field(default_factory=dict)
    cursor: Optional[str] = None


def ls(
    ctx: typer.Context,
    project: Optional[str] = project_opt(),
    prefix: Optional[str] = typer.Option(None, "--prefix", help="Only keys starting with this."),
    limit: Optional[str] = typer.Option(None, "--limit", help="At most this many (1-1000; default 100)."),
    sort: Optional[str] = typer.Option(None, "--sort", help="key:asc (default), createdAt:asc or createdAt:desc."),
    filters: Optional[List[str]] = typer.Option(
        None, "--filter", help="k=v (repeatable): uploaded_by, tag, format, is_image, min/max_width, min/max_height."),
    cursor: Optional[str] = typer.Option(None, "--cursor", help="next_cursor of the previous page (same --sort)."),
) -> None:
    """List a project's assets: {blobs: [...], next_cursor}.

    Example: run402 assets ls --prefix img/ --sort createdAt:desc --filter is_image=true
    """
    from run402_cli.wire.assets import SORT_KEYS, coerce_filter_value, filter_problem

    n = _int_in(limit, "--limit", 1, 1000)
    if sort is not None and sort not in SORT_KEYS:
        raise UsageError(f"--sort takes {' | '.join(SORT_KEYS)}, not {sort[:80]!r}", code="BAD_FLAG",
                         details={"flag": "--sort", "value": sort[:200]})
    chosen: dict[str, Any] = {}
    for k, v in _pairs(filters, "--filter"):
        if found := filter_problem(k, v):
            raise UsageError(f"--{found[1]}", code="BAD_FLAG", details={"flag": "--filter", "key": k[:80]})
        chosen[k] = coerce_filter_value(k, v)
    project_id, _ = resolve_assets_project(ctx, project)
    run_ls(LsOptions(project_id=project_id, prefix=prefix or None, limit=n, sort=sort, filters=chosen,
                     cursor=cursor or None), ctx)


def run_ls(opts: LsOptions, ctx: typer.Context) -> None:
    from run402_cli.api import assets

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        output.emit(assets.list_(c, entry["service_key"], prefix=opts.prefix, limit=opts.limit,
                                 cursor=opts.cursor, sort=opts.sort, filters=opts.filters,
                                 project_id=opts.project_id))


# --- rm -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RmOptions:
    project_id: str
    key: str


def rm(
    ctx: typer.Context,
    key: Optional[str] = typer.Argument(None, metavar="KEY", help="The asset's key."),
    project: Optional[str] = project_opt(),
) -> None:
    """Delete an asset.

    Example: run402 assets rm img/logo.png
    """
    k = _key(key, "run402 assets rm <key>")
    project_id, _ = resolve_assets_project(ctx, project)
    run_rm(RmOptions(project_id=project_id, key=k), ctx)


def run_rm(opts: RmOptions, ctx: typer.Context) -> None:
    from run402_cli.api import assets

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        assets.remove(c, entry["service_key"], opts.key, project_id=opts.project_id)
    output.emit({"status": "ok", "key": opts.key}, compact=True)


# --- sign -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignOptions:
    project_id: str
    key: str
    ttl: Optional[int] = None


def sign(
    ctx: typer.Context,
    key: Optional[str] = typer.Argument(None, metavar="KEY", help="The asset's key."),
    project: Optional[str] = project_opt(),
    ttl: Optional[str] = typer.Option(None, "--ttl", help="Seconds the URL stays valid (60-604800; default 3600)."),
) -> None:
    """Create a time-limited download URL for an asset (private ones included).

    Example: run402 assets sign reports/q4.pdf --ttl 600
    """
    from run402_cli.wire.assets import SIGN_TTL_MAX, SIGN_TTL_MIN

    k = _key(key, "run402 assets sign <key> [--ttl seconds]")
    seconds = _int_in(ttl, "--ttl", SIGN_TTL_MIN, SIGN_TTL_MAX)
    project_id, _ = resolve_assets_project(ctx, project)
    run_sign(SignOptions(project_id=project_id, key=k, ttl=seconds), ctx)


def run_sign(opts: SignOptions, ctx: typer.Context) -> None:
    from run402_cli.api import assets

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        output.emit(assets.sign(c, entry["service_key"], opts.key, opts.ttl, project_id=opts.project_id))


# --- diagnose -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiagnoseOptions:
    project_id: str
    url: str


def check_url(value: Optional[str], usage: str) -> str:
    """An absolute http(s) URL (BAD_USAGE otherwise), checked before any request."""
    from urllib.parse import urlsplit

    if not value:
        raise UsageError("Missing <url>.", hint=usage)
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok or any(c.isspace() or not c.isprintable() for c in value):
        raise UsageError(f"Not an http(s) URL: {value[:80]!r}", code="BAD_USAGE", hint=usage,
                         details={"url": value[:200]})
    return value


def diagnose(
    ctx: typer.Context,
    url: Optional[str] = typer.Argument(None, metavar="URL", help="A public asset URL (…/_blob/<key>)."),
    project: Optional[str] = project_opt(),
) -> None:
    """Probe what the CDN serves for a public asset URL; exit 0 iff it is the expected bytes.

    Prints the gateway's envelope (expectedSha256, observedSha256, cache, hint) on stdout and a
    vantage note on stderr. Loop on it: until run402 assets diagnose <url>; do sleep 1; done

    Example: run402 assets diagnose https://pr-abc.run402.com/_blob/logo.png
    """
    u = check_url(url, "run402 assets diagnose <url>")
    project_id, _ = resolve_assets_project(ctx, project)
    run_diagnose(DiagnoseOptions(project_id=project_id, url=u), ctx)


def run_diagnose(opts: DiagnoseOptions, ctx: typer.Context) -> None:
    from run402_cli.api import assets
    from run402_cli.wire.assets import VANTAGE

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        env = assets.diagnose(c, entry["service_key"], opts.url, project_id=opts.project_id)
    output.emit(env)
    body = env if isinstance(env, dict) else {}
    output.human(f"\n# probed once from {body.get('vantage') or VANTAGE}; not a global view")
    observed = body.get("observedSha256")
    if not (isinstance(observed, str) and observed and observed == body.get("expectedSha256")):
        raise typer.Exit(1)


# --- registration ---------------------------------------------------------------------------


def register(target: typer.Typer) -> None:
    for name, fn in (("put", put), ("get", get), ("ls", ls), ("rm", rm), ("sign", sign), ("diagnose", diagnose)):
        target.command(name)(fn)


register(app)
register(blob_app)
