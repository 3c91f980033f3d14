"""`functions deploy`: one source file to a deployed function."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import typer

from run402_cli import output
from run402_cli.commands._options import client, positive_int, read_file_flag, resolve_project
from run402_cli.commands.functions._common import (
    app, check_target, deps_flag, name_arg, project_arg, schedule_flag,
)
from run402_cli.errors import UsageError

CODE_SUFFIXES = (".js", ".mjs", ".ts")


@dataclass(frozen=True)
class DeployOptions:
    project_id: str
    name: str
    code: str
    path: str  # absolute
    timeout: Optional[int] = None
    memory: Optional[int] = None
    deps: Optional[tuple[str, ...]] = None
    schedule: Optional[str] = None  # '': remove the schedule (sent as null)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "code": self.code}
        config = {k: v for k, v in (("timeout", self.timeout), ("memory", self.memory)) if v is not None}
        if config:
            body["config"] = config
        if self.deps is not None:
            body["deps"] = list(self.deps)
        if self.schedule is not None:
            body["schedule"] = self.schedule or None
        return body


@app.command("deploy")
def deploy(
    ctx: typer.Context,
    project_id: Optional[str] = project_arg(),
    name: Optional[str] = name_arg(),
    file: Optional[str] = typer.Option(None, "--file", help="Required: the code, one .js, .mjs or .ts module."),
    timeout: Optional[str] = typer.Option(None, "--timeout", help="Timeout in seconds (capped by the tier)."),
    memory: Optional[str] = typer.Option(None, "--memory", help="Memory in MB (capped by the tier)."),
    deps: Optional[str] = typer.Option(
        None, "--deps", help="npm packages to bundle, comma-separated (at most 30), e.g. lodash,dayjs@^1."),
    schedule: Optional[str] = typer.Option(
        None, "--schedule", help="A 5-field cron schedule (UTC); '' removes the schedule."),
) -> None:
    """Deploy (or redeploy) a function from one source file.

    The module's default export handles each request: export default async (req: Request) =>
    Response (Node 22). TypeScript is transpiled and the module bundled by the API, with
    @run402/functions included; --deps adds npm packages (bare names take the latest version).
    Deploying may ask for payment when the project's lease has expired.

    Example: run402 functions deploy prj_abc123 send-reminders --file remind.ts --schedule '*/15 * * * *'
    """
    usage = "run402 functions deploy <project_id> <name> --file <path> [--timeout s] [--memory mb] " \
            "[--deps a,b@1] [--schedule '<cron>']"
    pid, fn = check_target(ctx, project_id, name, usage)
    t, m = positive_int(timeout, "--timeout"), positive_int(memory, "--memory")
    dep_list, cron = deps_flag(deps), schedule_flag(schedule)
    if not file:
        raise UsageError("Missing --file <path>.", hint=usage)
    if not file.lower().endswith(CODE_SUFFIXES):
        raise UsageError(f"--file must be a JavaScript or TypeScript module (.js, .mjs, .ts): {file}",
                         code="BAD_FLAG", field="--file",
                         hint="Bundle other sources into one module first; deploy apply takes multi-file functions.",
                         details={"flag": "--file", "path": file, "allowed": list(CODE_SUFFIXES)})
    code, full = read_file_flag(file, "--file")
    if code.strip() == "":
        raise UsageError(f"--file is empty: {file}", code="BAD_FLAG", field="--file",
                         details={"flag": "--file", "path": file})
    run_deploy(DeployOptions(project_id=pid, name=fn, code=code, path=full, timeout=t, memory=m,
                             deps=dep_list, schedule=cron), ctx)


def run_deploy(opts: DeployOptions, ctx: typer.Context) -> None:
    from run402_cli.api import functions
    from run402_cli.deploy import preflight

    _, entry = resolve_project(ctx, opts.project_id)
    key = entry["service_key"]
    with client(ctx) as c:
        preflight.check_function(c, key, opts.project_id, opts.name, timeout=opts.timeout,
                                 memory=opts.memory, schedule=opts.schedule)
        output.emit(functions.deploy(c, key, opts.project_id, opts.body()))
