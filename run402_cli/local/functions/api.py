"""The function lifecycle API (`/projects/v1/admin/:id/functions…`, the project's service key).

Deploy, update and delete each derive a new release from the active one (deploy/derive.py):
a function has one home, the release, whether it came from `deploy apply` or from here.
Deploy bundles before taking the deploy lock (npm and esbuild take seconds); the lock is held
only to swap the entry in.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from run402_cli.local.context import GatewayContext
from run402_cli.local.control.callers import Project, project_from_service_key
from run402_cli.local.deploy.derive import derive_release
from run402_cli.local.deploy.deploy_common import read_json
from run402_cli.local.errors import GatewayError
from run402_cli.local.functions import specs
from run402_cli.local.functions.build import Built, build_function, registry_dep_problem
from run402_cli.local.functions.bundles import store_bundle
from run402_cli.local.functions.toolchain import FUNCTIONS_VERSION
from run402_cli.local.deploy.cas import Cas
from run402_cli.wire import cron
from run402_cli.wire.functions import DEPS_MAX, function_name_problem, request_id_problem
from run402_cli.wire.times import iso

__all__: list[str] = []  # handlers only: local/routes.py lists them

MAX_CODE_BYTES = 4 * 1024 * 1024 - 64 * 1024


def _bad(field: str, message: str) -> GatewayError:
    return GatewayError(400, "BAD_REQUEST", f"{field}: {message}", details={"field": field})


def _name(request: Request) -> str:
    name = request.path_params["name"]
    problem = function_name_problem(name)
    if problem:
        raise _bad("name", problem)
    return name


def _config(body: dict[str, Any]) -> dict[str, int]:
    config = body.get("config")
    if config is None:
        return {}
    if not isinstance(config, dict) or set(config) - {"timeout", "memory"}:
        raise _bad("config", "takes only timeout (seconds) and memory (MB)")
    out = {}
    for key, wire in (("timeout", "timeoutSeconds"), ("memory", "memoryMb")):
        if key in config and config[key] is not None:
            v = config[key]
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 2**31:
                raise _bad(f"config.{key}", "must be a positive integer")
            out[wire] = v
    return out


def _schedule(body: dict[str, Any]) -> tuple[bool, str | None]:
    """(given, value): a schedule key present (a cron or null), or absent."""
    if "schedule" not in body:
        return False, None
    value = body["schedule"]
    if value is None or value == "":
        return True, None
    if not isinstance(value, str):
        raise _bad("schedule", "must be a 5-field cron expression or null")
    try:
        cron.parse(value)
    except cron.CronError as exc:
        raise _bad("schedule", str(exc)) from None
    return True, value


def _url(ctx: GatewayContext, name: str) -> str:
    return f"{ctx.api_base}/functions/v1/{name}"


def _meta(ctx: GatewayContext, project_id: str) -> dict[str, dict[str, Any]]:
    with ctx.pool.connection() as conn:
        rows = conn.execute("SELECT function_name, schedule, last_run_at, last_status, next_run_at, run_count, "
                            "last_error FROM run402_meta.function_schedules WHERE project_id = %s",
                            (project_id,)).fetchall()
    return {r[0]: {"schedule": r[1], "last_run_at": iso(r[2]), "last_status": r[3], "next_run_at": iso(r[4]),
                   "run_count": r[5], "last_error": r[6]} for r in rows}


def _public(ctx: GatewayContext, name: str, e: dict[str, Any], meta: dict[str, Any] | None) -> dict[str, Any]:
    out = {"name": name, "url": _url(ctx, name), "runtime": e.get("runtime", "node22"),
           "timeout": e["config"]["timeoutSeconds"], "memory": e["config"]["memoryMb"],
           "schedule": e.get("schedule")}
    if e.get("schedule"):
        m = dict(meta or {})
        if m.get("schedule") != e["schedule"]:  # not yet picked up by the scheduler
            m = {"last_run_at": None, "last_status": None, "next_run_at": None, "run_count": 0, "last_error": None}
        m.pop("schedule", None)
        out["schedule_meta"] = m
    out.update(created_at=e.get("created_at"), updated_at=e.get("updated_at"),
               runtime_version=e.get("runtime_version"), deps_resolved=e.get("deps_resolved") or {})
    return out


def _active_functions(ctx: GatewayContext, project_id: str) -> dict[str, Any]:
    from run402_cli.local.deploy.apply_store import active_release

    with ctx.pool.connection() as conn:
        active = active_release(conn, project_id)
    return (active[1].get("functions") or {}) if active else {}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


# -- deploy ---------------------------------------------------------------------------------------
def _deploy_sync(request: Request, body: Any) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    project = project_from_service_key(request, ctx, request.path_params["id"])
    if not isinstance(body, dict):
        raise _bad("body", "must be a JSON object {name, code, config?, deps?, schedule?}")
    unknown = sorted(set(body) - {"name", "code", "config", "deps", "schedule"})
    if unknown:
        raise _bad(unknown[0], "unknown field")
    name = body.get("name")
    if function_name_problem(name):
        raise _bad("name", function_name_problem(name) or "")
    code = body.get("code")
    if not isinstance(code, str) or not code.strip():
        raise _bad("code", "must be the function's source (a non-empty string)")
    source = code.encode("utf-8")
    if len(source) > MAX_CODE_BYTES:
        raise GatewayError(413, "PAYLOAD_TOO_LARGE", f"code is larger than {MAX_CODE_BYTES} bytes")
    config = _config(body)
    deps = body.get("deps") or []
    if not isinstance(deps, list) or len(deps) > DEPS_MAX:
        raise _bad("deps", f"must be an array of at most {DEPS_MAX} package specs")
    for i, d in enumerate(deps):
        problem = registry_dep_problem(d)
        if problem:
            raise _bad(f"deps[{i}]", problem)
    schedule_given, schedule = _schedule(body)
    current = _active_functions(ctx, project.id).get(name)
    # The tier's caps, before the slow part (the same check runs again on the final table).
    preview = dict(_active_functions(ctx, project.id))
    preview[name] = _entry_for(current, config, schedule_given, schedule, None, deps)
    specs.check_tier(project.tier, preview)
    built = build_function({"index.ts": source}, "index.ts", deps)
    ref = _store_source(ctx, source)
    bundle = store_bundle(ctx, built)

    def change(state: dict[str, Any]) -> dict[str, Any]:
        fns = dict(state.get("functions") or {})
        entry = _entry_for(fns.get(name), config, schedule_given, schedule, built, deps)
        entry.update(source=ref, bundle=bundle)
        entry["code_digest"] = specs.code_digest(entry)
        fns[name] = entry
        specs.check_tier(project.tier, fns)
        state["functions"] = dict(sorted(fns.items()))
        return state

    _, state = derive_release(ctx, project, change, created_by="functions-api")
    e = state["functions"][name]
    out = {"name": name, "url": _url(ctx, name), "status": "deployed", "runtime": "node22",
           "timeout": e["config"]["timeoutSeconds"], "memory": e["config"]["memoryMb"], "schedule": e.get("schedule"),
           "created_at": e["created_at"], "updated_at": e["updated_at"], "runtime_version": FUNCTIONS_VERSION,
           "deps_resolved": e.get("deps_resolved") or {}}
    if built.warnings:
        out["warnings"] = built.warnings
    return JSONResponse(out, status_code=201)


def _entry_for(current: dict[str, Any] | None, config: dict[str, int], schedule_given: bool, schedule: str | None,
               built: Built | None, deps: list[str]) -> dict[str, Any]:
    cfg = {"timeoutSeconds": specs.DEFAULT_TIMEOUT_SECONDS, "memoryMb": specs.DEFAULT_MEMORY_MB}
    cfg.update(config)
    now = _now()
    return {"runtime": "node22", "config": cfg,
            # A redeploy without a schedule keeps the one the function had; null removes it.
            "schedule": schedule if schedule_given else (current or {}).get("schedule"),
            "deps": list(deps), "deps_resolved": built.deps_resolved if built else {},
            "runtime_version": FUNCTIONS_VERSION,
            "created_at": (current or {}).get("created_at") or now, "updated_at": now}


def _store_source(ctx: GatewayContext, source: bytes) -> dict[str, Any]:
    sha = hashlib.sha256(source).hexdigest()
    cas = Cas(ctx.cas_dir)
    if not cas.has(sha):
        import secrets as _s

        tmp = cas.staging_path("fn-src-" + _s.token_hex(8))
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(source)
        cas.put_verified(tmp, sha, len(source))
    return {"sha256": sha, "size": len(source)}


async def _deploy(request: Request) -> JSONResponse:
    body = await read_json(request)
    return await run_in_threadpool(_deploy_sync, request, body)


# -- list / update / delete -------------------------------------------------------------------------
def _list_sync(request: Request) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    project = project_from_service_key(request, ctx, request.path_params["id"])
    fns = _active_functions(ctx, project.id)
    meta = _meta(ctx, project.id)
    return JSONResponse({"functions": [_public(ctx, n, e, meta.get(n)) for n, e in sorted(fns.items())]})


async def _list(request: Request) -> JSONResponse:
    return await run_in_threadpool(_list_sync, request)


def _not_found(name: str) -> GatewayError:
    return GatewayError(404, "FUNCTION_NOT_FOUND", f"Function {name!r} not found",
                        hint="run402 functions list <project_id> shows the project's functions")


def _update_sync(request: Request, body: Any) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    project = project_from_service_key(request, ctx, request.path_params["id"])
    name = _name(request)
    if not isinstance(body, dict) or not body or set(body) - {"schedule", "config"}:
        raise _bad("body", "must be {schedule?, config?: {timeout?, memory?}} with at least one field")
    config = _config(body)
    schedule_given, schedule = _schedule(body)

    def change(state: dict[str, Any]) -> dict[str, Any]:
        fns = dict(state.get("functions") or {})
        if name not in fns:
            raise _not_found(name)
        entry = dict(fns[name])
        entry["config"] = {**entry["config"], **config}
        if schedule_given:
            entry["schedule"] = schedule
        entry["updated_at"] = _now()
        fns[name] = entry
        specs.check_tier(project.tier, fns)
        state["functions"] = fns
        return state

    _, state = derive_release(ctx, project, change, created_by="functions-api")
    out = _public(ctx, name, state["functions"][name], _meta(ctx, project.id).get(name))
    out.pop("url", None)
    out.pop("created_at", None)
    out.setdefault("schedule_meta", None)
    return JSONResponse(out)


async def _update(request: Request) -> JSONResponse:
    body = await read_json(request)
    return await run_in_threadpool(_update_sync, request, body)


def _delete_sync(request: Request) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    project = project_from_service_key(request, ctx, request.path_params["id"])
    name = _name(request)

    def change(state: dict[str, Any]) -> dict[str, Any]:
        fns = dict(state.get("functions") or {})
        if name not in fns:
            raise _not_found(name)
        routes = [r["pattern"] for r in state.get("routes") or []
                  if r["target"].get("type") == "function" and r["target"].get("name") == name]
        if routes:
            raise GatewayError(409, "FUNCTION_IN_USE", f"Function {name!r} is the target of route(s) "
                               f"{', '.join(routes)}", details={"routes": routes},
                               hint="Deploy a routes change first (deploy apply with routes.replace)")
        del fns[name]
        state["functions"] = fns
        return state

    derive_release(ctx, project, change, created_by="functions-api")
    with ctx.pool.connection() as conn:
        conn.execute("DELETE FROM run402_meta.function_schedules WHERE project_id = %s AND function_name = %s",
                     (project.id, name))
    return JSONResponse({"status": "deleted", "name": name})


async def _delete(request: Request) -> JSONResponse:
    return await run_in_threadpool(_delete_sync, request)


# -- logs -------------------------------------------------------------------------------------------
def _logs_sync(request: Request) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    project: Project = project_from_service_key(request, ctx, request.path_params["id"])
    name = _name(request)
    q = request.query_params
    tail_raw = q.get("tail", "50")
    if not tail_raw.isdigit() or not 1 <= int(tail_raw) <= 1000:
        raise _bad("tail", "must be an integer from 1 to 1000")
    since = None
    if q.get("since") is not None:
        if not q["since"].isdigit() or len(q["since"]) > 15:
            raise _bad("since", "must be epoch milliseconds")
        since = datetime.fromtimestamp(int(q["since"]) / 1000, timezone.utc)
    request_id = q.get("request_id")
    if request_id is not None and request_id_problem(request_id):
        raise _bad("request_id", request_id_problem(request_id) or "")
    sql = ("SELECT id, ts, message, request_id, level FROM run402_meta.function_logs "
           "WHERE project_id = %s AND function_name = %s")
    args: list[Any] = [project.id, name]
    if since is not None:
        sql += " AND ts >= %s"
        args.append(since)
    if request_id is not None:
        sql += " AND request_id = %s"
        args.append(request_id)
    sql += " ORDER BY ts DESC, id DESC LIMIT %s"
    args.append(int(tail_raw))
    with ctx.pool.connection() as conn:
        rows = conn.execute(sql, args).fetchall()
    logs = [{"timestamp": int(ts.timestamp() * 1000), "message": msg, "event_id": str(i),
             "log_stream_name": f"{name}/{rid or 'system'}", "request_id": rid, "level": level}
            for i, ts, msg, rid, level in reversed(rows)]
    return JSONResponse({"logs": logs})


async def _logs(request: Request) -> JSONResponse:
    await request.app.state.ctx.functions.flush()  # the lines of invocations that just returned
    return await run_in_threadpool(_logs_sync, request)
