"""A function entry's sources in, its bundle out, both in the CAS.

The sources of a release's functions are CAS objects like site files (uploaded by the client
through the content plan); the bundle build.py makes of them is stored there too, named by its
own digest, and the entry records it. Workers load bundles from here.
"""

from __future__ import annotations

import secrets
from typing import Any, Iterator

from run402_cli.local.context import GatewayContext
from run402_cli.local.deploy.cas import Cas
from run402_cli.local.errors import GatewayError
from run402_cli.local.functions.build import Built, build_function
from run402_cli.local.functions.toolchain import FUNCTIONS_VERSION

__all__ = ["FunctionBuildFailed", "build_entry", "build_missing", "function_sources", "read_bundle", "store_bundle"]


def function_sources(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry["source"]] if entry.get("source") else list((entry.get("files") or {}).values())


def _source_files(ctx: GatewayContext, entry: dict[str, Any]) -> tuple[dict[str, bytes], str]:
    cas = Cas(ctx.cas_dir)

    def read(ref: dict[str, Any]) -> bytes:
        path = cas.path(ref["sha256"])
        if not path.is_file():
            raise GatewayError(400, "MISSING_CONTENT", "A function source was never uploaded",
                               details={"sha256": ref["sha256"]})
        return path.read_bytes()

    if entry.get("source"):
        data = read(entry["source"])
        # A single module: TypeScript or JavaScript, told apart by trying TypeScript (a superset).
        return {"index.ts": data}, "index.ts"
    return {p: read(r) for p, r in entry["files"].items()}, entry["entrypoint"]


def store_bundle(ctx: GatewayContext, built: Built) -> dict[str, Any]:
    cas = Cas(ctx.cas_dir)
    tmp = cas.staging_path("bundle-" + secrets.token_hex(8))
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(built.bundle)
    cas.put_verified(tmp, built.sha256, len(built.bundle))
    return {"sha256": built.sha256, "size": len(built.bundle)}


def build_entry(ctx: GatewayContext, entry: dict[str, Any], deps: list[str] | None = None) -> Built:
    """Bundle the entry's sources (and deps) and record the bundle on it."""
    files, entrypoint = _source_files(ctx, entry)
    built = build_function(files, entrypoint, deps if deps is not None else entry.get("deps") or [])
    entry["bundle"] = store_bundle(ctx, built)
    entry["runtime_version"] = FUNCTIONS_VERSION
    if deps is not None:
        entry["deps_resolved"] = built.deps_resolved
    return built


class FunctionBuildFailed(Exception):
    def __init__(self, name: str, error: GatewayError) -> None:
        super().__init__(f"{name}: {error.message}")
        self.name, self.error = name, error


def build_missing(ctx: GatewayContext, functions: dict[str, dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """Bundle each entry that has no bundle yet; yields (name, bundle sha256) as each is done."""
    for name, entry in functions.items():
        if entry.get("bundle"):
            continue
        try:
            build_entry(ctx, entry)
        except GatewayError as exc:
            raise FunctionBuildFailed(name, exc) from None
        yield name, entry["bundle"]["sha256"]


def read_bundle(ctx: GatewayContext, entry: dict[str, Any]) -> bytes:
    return Cas(ctx.cas_dir).path(entry["bundle"]["sha256"]).read_bytes()
