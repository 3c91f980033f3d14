"""The tier preflight (spec/api-deploy.md §1.10): obvious function caps checked locally, before
any upload or plan, so a deploy the API would refuse for the wallet's tier fails at once with
the field at fault. Used by `deploy apply` (`check_release`) and by `functions deploy` /
`functions update` (`check_function`). The gateway remains the authority: when the tier status
cannot be read, or names no tier, nothing is checked.

- Runs only when some function sets a timeout, a memory size or a non-empty schedule.
- Limits: `GET /tiers/v1/status`, looked up under `function_limits`, `limits.functions`,
  `limits.function_limits`, `pool_usage`, then the top level, each under several key aliases
  (`LIMIT_KEYS`); a limit the status does not give comes from the static table of the tier
  (`wire.functions.TIER_FUNCTION_LIMITS`) and says so (`limit_source`).
- Checks, in order: per function timeout, memory, cron gap (`wire.cron.min_interval_minutes`:
  minute and hour fields only; an expression that does not parse is left to the API); then
  the number of scheduled functions the deploy would leave.
- Failure: a DeployError `BAD_FIELD`, `phase: "validate"`, `resource` = the field's path
  (`functions.<name>.config.timeoutSeconds`, `functions.<name>.config.memoryMb`,
  `functions.<name>.schedule`, `functions.scheduled_count`) with §1.10's details and a hint.

The `functions` commands use the same ReleaseSpec field paths (their wire says `timeout` and
`memory`): one vocabulary for an agent to branch on, whichever command it ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

from run402_cli.errors import Run402Error
from run402_cli.wire.cron import min_interval_minutes
from run402_cli.wire.functions import TIER_FUNCTION_LIMITS

__all__ = [
    "LIMIT_KEYS", "Limit", "Limits", "check_function", "check_release", "limits_from_status",
    "lookup", "read_limits",
]

# limit -> the keys it may go by in a tier status, preferred first
LIMIT_KEYS: dict[str, tuple[str, ...]] = {
    "max_function_timeout_seconds": ("max_function_timeout_seconds", "max_timeout_seconds",
                                     "timeout_seconds_max", "function_timeout_seconds_max"),
    "max_function_memory_mb": ("max_function_memory_mb", "max_memory_mb", "memory_mb_max",
                               "function_memory_mb_max"),
    "max_scheduled_functions": ("max_scheduled_functions", "scheduled_functions_limit",
                                "scheduled_function_limit", "max_function_schedules"),
    "min_cron_interval_minutes": ("min_cron_interval_minutes", "minimum_cron_interval_minutes",
                                  "min_schedule_interval_minutes", "min_scheduled_function_interval_minutes"),
}

_FROM_STATUS = "tier_status"
_FALLBACK = "local_static_fallback"


@dataclass(frozen=True)
class Limit:
    value: float
    source: str  # "tier_status" | "local_static_fallback"


@dataclass(frozen=True)
class Limits:
    tier: str
    values: Mapping[str, Limit]

    def get(self, key: str) -> Optional[Limit]:
        return self.values.get(key)


def _containers(status: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    limits = status.get("limits") if isinstance(status.get("limits"), dict) else {}
    found = [status.get("function_limits"), limits.get("functions"), limits.get("function_limits"),
             status.get("pool_usage"), status]
    return [c for c in found if isinstance(c, dict)]


def lookup(status: Mapping[str, Any], keys: Iterable[str]) -> Optional[float]:
    """The first non-negative number under any of `keys`, container by container (§1.10's order)."""
    for container in _containers(status):
        for key in keys:
            value = container.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0 \
                    and value == value and value != float("inf"):
                return value
    return None


def limits_from_status(status: Any) -> Optional[Limits]:
    """The function caps a tier status gives, the static table filling the gaps; None when the
    status names no tier, or neither it nor the table knows any cap of that tier."""
    if not isinstance(status, dict) or not isinstance(status.get("tier"), str) or not status["tier"]:
        return None
    fallback = TIER_FUNCTION_LIMITS.get(status["tier"].lower(), {})
    values: dict[str, Limit] = {}
    for limit, keys in LIMIT_KEYS.items():
        found = lookup(status, keys)
        if found is not None:
            values[limit] = Limit(found, _FROM_STATUS)
        elif limit in fallback:
            values[limit] = Limit(fallback[limit], _FALLBACK)
    return Limits(status["tier"], values) if values else None


def read_limits(client: Any) -> Optional[Limits]:
    """`GET /tiers/v1/status` (wallet auth) -> Limits; None on any failure (skip the preflight)."""
    from run402_cli.api import tiers

    try:
        status = tiers.status(client)
    except Run402Error:
        return None
    return limits_from_status(status)


# --- the checks -----------------------------------------------------------------------------


def _scheduled(schedule: Any) -> bool:
    return isinstance(schedule, str) and schedule.strip() != ""


def _error(message: str, field: str, value: Any, limits: Limits, limit: Limit, **extra: Any) -> Run402Error:
    from run402_cli.deploy.flow import DeployError

    if limit.source == _FALLBACK:
        hint = ("GET /tiers/v1/status gave no function caps, so this limit is the CLI's table for "
                f"the {limits.tier} tier. Lower the setting or upgrade the tier (run402 tier status "
                "shows the live caps); if the table is out of date, the API decides when you retry.")
    else:
        hint = f"Lower the setting, or upgrade the tier (the {limits.tier} tier allows at most this)."
    details = {"field": field, "value": value, "tier": limits.tier, "limit_source": limit.source, **extra}
    return DeployError("BAD_FIELD", message, hint=hint, safe_to_retry=True, body={
        "category": "deploy", "phase": "validate", "resource": field, "details": details})


def _int(value: float) -> Any:
    return int(value) if float(value).is_integer() else value


def _check_one(limits: Limits, name: str, timeout: Any, memory: Any, schedule: Any) -> None:
    prefix = f"functions.{name}"
    cap = limits.get("max_function_timeout_seconds")
    if timeout is not None and cap is not None and timeout > cap.value:
        raise _error(f"Function {name}: a timeout of {timeout} s is more than the {limits.tier} tier "
                     f"allows ({_int(cap.value)} s).", f"{prefix}.config.timeoutSeconds", timeout, limits,
                     cap, tier_max=_int(cap.value), max_function_timeout_seconds=_int(cap.value))
    cap = limits.get("max_function_memory_mb")
    if memory is not None and cap is not None and memory > cap.value:
        raise _error(f"Function {name}: {memory} MB of memory is more than the {limits.tier} tier "
                     f"allows ({_int(cap.value)} MB).", f"{prefix}.config.memoryMb", memory, limits,
                     cap, tier_max=_int(cap.value), max_function_memory_mb=_int(cap.value))
    cap = limits.get("min_cron_interval_minutes")
    if _scheduled(schedule) and cap is not None:
        gap = min_interval_minutes(schedule)
        if gap is not None and gap < cap.value:
            least = _int(cap.value)
            raise _error(f"Function {name}: the schedule {schedule!r} runs {gap} minute(s) apart; the "
                         f"{limits.tier} tier needs at least {least} minutes between runs.",
                         f"{prefix}.schedule", schedule, limits, cap, tier_max=least,
                         interval_minutes=gap, min_interval_minutes=least, min_cron_interval_minutes=least)


def _count_error(count: int, limits: Limits, cap: Limit, source: str) -> Run402Error:
    most = _int(cap.value)
    return _error(f"This would leave {count} scheduled function(s); the {limits.tier} tier allows "
                  f"{most}.", "functions.scheduled_count", count, limits, cap, tier_max=most,
                  max_scheduled_functions=most, count_source=source)


def _needs_check(specs: Iterable[Mapping[str, Any]]) -> bool:
    for fs in specs:
        cfg = fs.get("config") if isinstance(fs.get("config"), dict) else {}
        if cfg.get("timeoutSeconds") is not None or cfg.get("memoryMb") is not None \
                or _scheduled(fs.get("schedule")):
            return True
    return False


def _active_functions(client: Any, anon_key: Optional[str]) -> Optional[list[Any]]:
    from run402_cli.api import deploy as api

    try:
        inventory = api.active_release(client, anon_key, site_limit=1)
    except Run402Error:
        return None
    fns = inventory.get("functions") if isinstance(inventory, dict) else None
    if isinstance(fns, dict):  # {name: {...}}: the same inventory keyed by name
        fns = [{"name": n, **(f if isinstance(f, dict) else {})} for n, f in fns.items()]
    return fns if isinstance(fns, list) else []


def check_release(client: Any, spec: Mapping[str, Any], *, anon_key: Optional[str]) -> None:
    """The preflight of a normalized ReleaseSpec (`deploy apply`). A patch-only spec that may
    change the scheduled count reads the active release's functions
    (`GET /apply/v1/releases/active?site_limit=1`, `apikey: <anon_key>`); when that fails, the
    count is left to the API."""
    functions = spec.get("functions") if isinstance(spec.get("functions"), dict) else {}
    replace = functions.get("replace") if isinstance(functions.get("replace"), dict) else None
    patch = functions.get("patch") if isinstance(functions.get("patch"), dict) else {}
    sets = patch.get("set") if isinstance(patch.get("set"), dict) else {}
    entries = [*(replace or {}).items(), *sets.items()]
    if not _needs_check(fs for _, fs in entries):
        return
    limits = read_limits(client)
    if limits is None:
        return
    for name, fs in entries:
        cfg = fs.get("config") if isinstance(fs.get("config"), dict) else {}
        _check_one(limits, name, cfg.get("timeoutSeconds"), cfg.get("memoryMb"), fs.get("schedule"))
    cap = limits.get("max_scheduled_functions")
    if cap is None:
        return
    at_least = len({name for name, fs in entries if _scheduled(fs.get("schedule"))})
    if at_least > cap.value:
        raise _count_error(at_least, limits, cap, "manifest")
    if replace is not None:
        scheduled, source = {n for n, fs in replace.items() if _scheduled(fs.get("schedule"))}, "manifest"
    elif patch:
        inventory = _active_functions(client, anon_key)
        if inventory is None:
            return
        scheduled = {f.get("name") for f in inventory if isinstance(f, dict) and _scheduled(f.get("schedule"))}
        source = "active_release_inventory"
    else:
        return
    for name in patch.get("delete") or []:
        scheduled.discard(name)
    for name, fs in sets.items():
        if "schedule" in fs and fs["schedule"] is None:
            scheduled.discard(name)
        elif _scheduled(fs.get("schedule")):
            scheduled.add(name)
    if len(scheduled) > cap.value:
        raise _count_error(len(scheduled), limits, cap, source)


def check_function(client: Any, service_key: str, project_id: str, name: str, *,
                   timeout: Optional[int] = None, memory: Optional[int] = None,
                   schedule: Optional[str] = None) -> None:
    """The preflight of `functions deploy` / `functions update` for function `name`. A
    non-empty `schedule` also counts the project's scheduled functions (`GET …/functions`);
    only a function that is not scheduled yet can push the count over the cap, so changing
    the schedule of one that already runs is never refused here (a tier that shrank under it
    is the API's call). When the list fails, the count is left to the API."""
    if timeout is None and memory is None and not _scheduled(schedule):
        return
    limits = read_limits(client)
    if limits is None:
        return
    _check_one(limits, name, timeout, memory, schedule)
    cap = limits.get("max_scheduled_functions")
    if not _scheduled(schedule) or cap is None:
        return
    from run402_cli.api import functions as api

    try:
        listed = api.list_(client, service_key, project_id)
    except Run402Error:
        return
    rows = listed.get("functions") if isinstance(listed, dict) else listed
    if not isinstance(rows, list):
        return
    scheduled = {f.get("name") for f in rows if isinstance(f, dict) and _scheduled(f.get("schedule"))}
    if name in scheduled:
        return
    if len(scheduled) + 1 > cap.value:
        raise _count_error(len(scheduled) + 1, limits, cap, "functions_list")
