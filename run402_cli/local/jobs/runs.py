"""`/jobs/v1/runs`: platform-managed jobs, which the local gateway cannot run.

A managed job (e.g. `kysigned.fflonk_prove.v0_17_0`) runs on the hosted platform's own job
runners, with their images and billing; nothing here could produce its artifacts. So a submit
is authenticated (a project's service key: none or a forged one is 401, an anon key 403), its
shape checked as the hosted API would, and then answered 501 NOT_AVAILABLE_LOCALLY, naming the
job type and where to run it instead; nothing is accepted or stored. No job can exist locally:
get, logs and cancel of any id are 404 JOB_NOT_FOUND.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from run402_cli.local.context import GatewayContext
from run402_cli.local.control.callers import Project, project_of_service_key
from run402_cli.local.errors import GatewayError
from run402_cli.local.http_body import read_json

__all__: list[str] = []  # handlers only: local/routes.py lists them

HOSTED_API = "https://api.run402.com"


def _project(request: Request) -> Project:
    ctx: GatewayContext = request.app.state.ctx
    project = project_of_service_key(request, ctx, "Jobs")
    ctx.limits.check_project(project.id)
    return project


def _shape(body: dict[str, Any]) -> str:
    """The job type of a well-formed submit request (400 BAD_REQUEST otherwise)."""
    job_type, job_input, cost = body.get("job_type"), body.get("input"), body.get("max_cost_usd_micros")
    problems = []
    if not isinstance(job_type, str) or not job_type.strip():
        problems.append("job_type must be a non-empty string")
    if not isinstance(job_input, dict):
        problems.append("input must be an object")
    if isinstance(cost, bool) or not isinstance(cost, int) or cost < 0:
        problems.append("max_cost_usd_micros must be a non-negative integer")
    if problems:
        raise GatewayError(400, "BAD_REQUEST", "Invalid job request: " + "; ".join(problems),
                           details={"problems": problems},
                           hint='{"job_type": "...", "input": {...}, "max_cost_usd_micros": 50000}')
    return job_type  # type: ignore[return-value]


async def _submit(request: Request) -> JSONResponse:
    project = await run_in_threadpool(_project, request)
    job_type = _shape(await read_json(request, want_object=True))[:200]
    raise GatewayError(
        501, "NOT_AVAILABLE_LOCALLY",
        f"Managed job {job_type!r} cannot run on the local gateway: managed jobs run on the hosted "
        f"platform's job runners. Submit it to the hosted API instead (RUN402_API_BASE={HOSTED_API}).",
        category="local", retryable=False,
        hint=f"RUN402_API_BASE={HOSTED_API} run402 jobs submit --file <request.json> (with a hosted project)",
        details={"job_type": job_type, "project_id": project.id, "hosted_api": HOSTED_API},
        next_actions=[{"action": "use_hosted_api", "env": {"RUN402_API_BASE": HOSTED_API}}],
        extra={"mutation_state": "none"})


def _not_found(request: Request) -> JSONResponse:
    _project(request)
    job_id = request.path_params["id"][:128]
    raise GatewayError(404, "JOB_NOT_FOUND", f"Job {job_id!r} not found: the local gateway runs no managed jobs",
                       details={"job_id": job_id},
                       hint=f"Jobs submitted to the hosted API are read there (RUN402_API_BASE={HOSTED_API}).")


_get = _logs = _cancel = _not_found
