"""`run402 cdn wait-fresh`: wait until a mutable public asset URL serves the expected bytes.

The official v2.10.0 command calls an SDK namespace that does not exist and always fails
(spec/api-deploy.md §11.2); this one does what it documents: poll `assets diagnose` (100 ms
doubling to 1 s; network errors, 5xx, 408 and 429 retried) until `observedSha256` is `--sha` or
`--timeout` seconds pass, print `{fresh, observedSha256, attempts, elapsedMs, vantage}`, and
exit 0 when fresh, 1 when not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import typer

from run402_cli import output
from run402_cli.commands._options import client, group, positive_int, project_opt, resolve_project
from run402_cli.errors import UsageError

__all__ = ["WaitFreshOptions", "app"]

app = group(help="CDN freshness of public asset URLs: wait until a mutable URL serves new bytes.")


@dataclass(frozen=True)
class WaitFreshOptions:
    project_id: str
    url: str
    sha256: str
    timeout: int = 60


@app.command("wait-fresh")
def wait_fresh(
    ctx: typer.Context,
    url: Optional[str] = typer.Argument(None, metavar="URL", help="The mutable asset URL (its `url` field)."),
    sha: Optional[str] = typer.Option(None, "--sha", help="The expected SHA-256, 64 hex characters (required)."),
    timeout: Optional[str] = typer.Option(None, "--timeout", help="Seconds to wait at most (default 60)."),
    project: Optional[str] = project_opt(),
) -> None:
    """Wait until a mutable asset URL serves the given SHA-256; exit 1 if it does not in time.

    Content-addressed URLs (cdnUrl, immutableUrl) never need this: they are fresh at once.

    Example: run402 cdn wait-fresh https://pr-abc.run402.com/_blob/logo.png --sha <sha256>
    """
    from run402_cli.commands.assets import check_url, resolve_assets_project
    from run402_cli.wire.assets import SHA256_HEX

    usage = "run402 cdn wait-fresh <url> --sha <sha256> [--timeout seconds]"
    u = check_url(url, usage)
    if not sha:
        raise UsageError("Missing --sha <sha256>: the digest the URL should serve.", hint=usage, details={"flag": "--sha"})
    if not SHA256_HEX.fullmatch(sha):
        raise UsageError("--sha takes a SHA-256 digest: 64 hex characters.", code="BAD_FLAG",
                         details={"flag": "--sha", "value": sha[:80]})
    seconds = positive_int(timeout, "--timeout", maximum=86400) if timeout is not None else 60
    project_id, _ = resolve_assets_project(ctx, project)
    run_wait_fresh(WaitFreshOptions(project_id=project_id, url=u, sha256=sha.lower(), timeout=seconds or 60), ctx)


def run_wait_fresh(opts: WaitFreshOptions, ctx: typer.Context) -> None:
    from run402_cli.api import assets

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        result = assets.wait_fresh(c, entry["service_key"], opts.url, opts.sha256, timeout=float(opts.timeout),
                                   project_id=opts.project_id)
    output.emit(result)
    if not result["fresh"]:
        raise typer.Exit(1)
