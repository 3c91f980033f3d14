"""Hints and next actions the CLI adds to a blocked deploy (the SDK's warning-gate error has
neither; the official CLI adds `hint` and `next_actions`), with its route-warning guidance table."""

from __future__ import annotations

from typing import Any

from run402_cli.deploy.flow import DeployError
from run402_cli.wire.errors import MISSING_REQUIRED_SECRET

__all__ = ["ROUTE_WARNING_GUIDANCE", "enhance_warning_error"]

ROUTE_WARNING_GUIDANCE: dict[str, tuple[str, list[str]]] = {
    "PUBLIC_ROUTED_FUNCTION": (
        "A deploy route makes a function public same-origin browser ingress; direct "
        "/functions/v1/:name remains API-key protected.",
        ["Review application auth and authorization in the routed function.",
         "Add CSRF protection for cookie-authenticated POST/PUT/PATCH/DELETE routes.",
         "Implement CORS and OPTIONS explicitly when cross-origin callers are intended.",
         "Retry with --allow-warnings only after the public ingress review is intentional."]),
    "ROUTE_TARGET_CARRIED_FORWARD": (
        "A carried-forward route still points at a base-release function target.",
        ["Inspect the active release with run402 deploy release active.",
         "Deploy routes.replace if the target should change in this release."]),
    "ROUTE_SHADOWS_STATIC_PATH": (
        "A dynamic route shadows a static site path.",
        ["Inspect the warning details for affected static paths.",
         "Inspect live routes with run402 deploy release active.",
         "Retry with --allow-warnings only when dynamic shadowing is intentional."]),
    "WILDCARD_ROUTE_SHADOWS_STATIC_PATHS": (
        "A prefix wildcard route shadows one or more static site paths.",
        ["Review affected route/static path details.",
         "Split exact routes or move static paths if the shadowing is accidental.",
         "Retry with --allow-warnings only when the wildcard shadowing is intentional."]),
    "METHOD_SPECIFIC_ROUTE_ALLOWS_GET_STATIC_FALLBACK": (
        "A method-specific route allows static fallback for unmatched methods such as GET.",
        ["Confirm that static fallback for GET/HEAD is intended.",
         "Add method coverage or static files deliberately."]),
    "WILDCARD_ROUTE_EXCLUDES_MUTATION_METHODS": (
        "A wildcard function route only allows GET/HEAD, so POST/PUT/PATCH/DELETE paths under "
        "that prefix will be rejected before the function runs.",
        ["Add the mutation methods the routed function supports, such as POST.",
         "Omit methods to allow every supported method when the route is an API surface.",
         "Use --allow-warnings only if the wildcard prefix is intentionally read-only."]),
    "ROUTE_TABLE_NEAR_LIMIT": (
        "The route table is near the gateway/project limit.",
        ["Consolidate prefix routes where possible.",
         "Remove stale route entries before adding more."]),
    "ROUTES_NOT_ENABLED": (
        "Deploy-v2 web routes are not enabled for this project or environment; direct "
        "/functions/v1/:name remains protected and is not a browser-route substitute.",
        ["Deploy without the routes resource, or request route enablement for this project/environment.",
         "Keep direct function invocation API-key protected; do not substitute it for same-origin browser routes."]),
    "STATIC_ALIAS_SHADOWS_STATIC_PATH": (
        "A static route target shadows a direct static path at the same public URL.",
        ["Inspect the route pattern, target.file, and direct static path.",
         "Confirm only when the static route target is intentional."]),
    "STATIC_ALIAS_RELATIVE_ASSET_RISK": (
        "Relative asset URLs inside the target HTML may resolve differently at the static route target URL.",
        ["Inspect the target HTML for relative asset references.",
         "Use absolute asset URLs or confirm only when the alternate URL is intentional."]),
    "STATIC_ALIAS_DUPLICATE_CANONICAL_URL": (
        "Both the static route target URL and the target file URL may be publicly reachable.",
        ["Decide which URL should be canonical.",
         "Update links/canonical tags or accept the duplicate public URL intentionally."]),
    "STATIC_ALIAS_EXTENSIONLESS_NON_HTML": (
        "An extensionless static route target points at a non-HTML file.",
        ["Check that the extensionless route is meant to serve that content type.",
         "Prefer extensionless static route targets for HTML pages."]),
    "STATIC_ALIAS_TABLE_NEAR_LIMIT": (
        "Static route targets count toward the route table limit.",
        ["Consolidate manual static route targets where possible.",
         "Avoid one route entry per page for large sites until framework-scale Web Output support exists."]),
}


def enhance_warning_error(err: DeployError, *, command: str = "run402 deploy apply",
                          allow_flags: bool = True) -> DeployError:
    """Add `hint` and `next_actions` to a warning-gate error (in place; returned)."""
    warnings = err.body.get("unacknowledged_warnings") or err.body.get("warnings")
    if not isinstance(warnings, list):
        return err
    codes = [w.get("code") for w in warnings if isinstance(w, dict)]
    route_code = next((c for c in codes if c in ROUTE_WARNING_GUIDANCE), None)
    affected = [a for w in warnings if isinstance(w, dict) and w.get("code") == MISSING_REQUIRED_SECRET
                for a in (w.get("affected") or [])]
    if route_code and err.code != MISSING_REQUIRED_SECRET:
        hint, actions = ROUTE_WARNING_GUIDANCE[route_code]
        next_actions: list[Any] = list(actions)
    elif err.code == MISSING_REQUIRED_SECRET:
        hint = ("Set the missing secret values with `run402 secrets set`, then retry deploy apply. "
                "Use --allow-warnings only after explicit review.")
        next_actions = []
        if affected:
            next_actions.append(f"Set or inspect affected secrets: {', '.join(dict.fromkeys(affected))}")
        next_actions += [f"Retry `{command}` after resolving warnings.",
                         "Use `--allow-warnings` only when the warning was explicitly reviewed."]
    else:
        hint = "Review the plan warnings, then retry with --allow-warnings if you intentionally accept them."
        next_actions = [f"Retry `{command}` after resolving warnings.",
                        "Use `--allow-warnings` only when the warning was explicitly reviewed."]
    if not allow_flags:
        hint = ("Review the plan warnings. This command has no flag to accept them: deploy with "
                "`run402 deploy apply --allow-warning <code>` if they are intended.")
        next_actions = [a for a in next_actions if "allow-warnings" not in a] + [
            "Use `run402 deploy apply` with `--allow-warning <code>` to accept a reviewed warning."]
    if err.hint is None:
        err.hint = hint
    if not err.next_actions:
        err.next_actions = next_actions
    return err
