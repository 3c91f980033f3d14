"""Every path the gateway serves, in one table, in match order, grouped by room.

Each room keeps its handlers (module-private functions); this is the one place that names them.
Starlette tries the routes top to bottom: a literal path (`/apply/v1/releases/active`) comes
before the template it would also match (`/apply/v1/releases/{id}`).

Not in this table, because they never reach it: a deployed site, picked by its
`<label>.localhost` Host in a middleware before any route (web/sites.py), and the body caps
(http_body.py). An unknown path or method is the 404 / 405 envelope (app.py).
"""

from __future__ import annotations

from starlette.routing import Route

from run402_cli.local.control import projects, service, tiers, wallets
from run402_cli.local.data import expose, project_sql, rest, user_admin, users
from run402_cli.local.deploy import apply_commit, apply_plan, content, releases, upload
from run402_cli.local.functions import api as functions_api, invoke as functions_invoke
from run402_cli.local.jobs import runs
from run402_cli.local.secrets import handlers as secrets
from run402_cli.local.storage import api as storage, service_put
from run402_cli.local.web import subdomains
from run402_cli.local import unavailable

__all__ = ["HOT_ENDPOINTS", "route_table"]

# What clients call thousands of times in a row: every upload of a deploy, every REST call of an
# app. The gateway's hot lane (app.py) takes these straight from the body caps to the handler.
HOT_ENDPOINTS = (upload.put_part, rest._rest)


def route_table() -> list[Route]:
    return [
        # control: service status, tiers, wallets and billing, projects
        Route("/health", service._health, methods=["GET"], name="health"),
        Route("/status", service._status, methods=["GET"]),
        Route("/tiers/v1", tiers._quote, methods=["GET"]),
        Route("/tiers/v1/status", tiers._status, methods=["GET"]),
        Route("/tiers/v1/{tier}", tiers._set, methods=["POST"]),
        Route("/faucet/v1", wallets._faucet, methods=["POST"]),
        Route("/billing/v1/accounts/{wallet}", wallets._account, methods=["GET"]),
        Route("/billing/v1/accounts/{wallet}/history", wallets._history, methods=["GET"]),
        Route("/wallets/v1/{wallet}/projects", wallets._wallet_projects, methods=["GET"]),
        Route("/rpc/v1/{chain}", wallets._rpc, methods=["POST"]),
        Route("/projects/v1", projects._provision, methods=["POST"]),
        Route("/projects/v1/{id}", projects._delete, methods=["DELETE"]),
        Route("/projects/v1/admin/{id}/schema", projects._schema, methods=["GET"]),
        Route("/projects/v1/admin/{id}/usage", projects._usage, methods=["GET"]),

        # data: the expose manifest, a project's own SQL, the PostgREST proxy, end-user auth
        Route("/projects/v1/expose/validate", expose._validate_projectless, methods=["POST"]),
        Route("/projects/v1/admin/{id}/expose", expose._apply, methods=["POST"]),
        Route("/projects/v1/admin/{id}/expose", expose._get, methods=["GET"]),
        Route("/projects/v1/admin/{id}/expose/validate", expose._validate_project, methods=["POST"]),
        Route("/projects/v1/admin/{id}/sql", project_sql._sql, methods=["POST"]),
        Route("/rest/v1/{path:path}", rest._rest, methods=rest._METHODS),
        Route("/admin/v1/rest/{path:path}", rest._admin_rest, methods=rest._METHODS),
        Route("/auth/v1/signup", users._signup, methods=["POST"]),
        Route("/auth/v1/token", users._token, methods=["POST"]),
        Route("/auth/v1/magic-link", users._magic_link, methods=["POST"]),
        Route("/auth/v1/user", users._get_user, methods=["GET"]),
        Route("/auth/v1/logout", users._logout, methods=["POST"]),
        Route("/auth/v1/user/password", users._set_password, methods=["PUT"]),
        Route("/auth/v1/settings", user_admin._patch_settings, methods=["PATCH"]),
        Route("/auth/v1/settings", user_admin._get_settings, methods=["GET"]),
        Route("/auth/v1/providers", users._providers, methods=["GET"]),
        Route("/auth/v1/admin/users", user_admin._admin_create_user, methods=["POST"]),
        Route("/projects/v1/admin/{id}/promote-user", user_admin._promote, methods=["POST"]),
        Route("/projects/v1/admin/{id}/demote-user", user_admin._demote, methods=["POST"]),
        Route("/projects/v1/admin/{id}/mailbox", user_admin._mailbox, methods=["GET"]),

        # deploy: content uploads, apply plans and commits, operations and releases
        Route("/content/v1/plans", content._create, methods=["POST"]),
        Route("/content/v1/plans/{id}/commit", content._commit, methods=["POST"]),
        upload.route(),
        Route("/apply/v1/plans", apply_plan._plan, methods=["POST"]),
        Route("/apply/v1/plans/{id}/commit", apply_commit._commit, methods=["POST"]),
        Route("/apply/v1/operations/{id}/resume", apply_commit._resume, methods=["POST"]),
        Route("/apply/v1/operations", releases._operations, methods=["GET"]),
        Route("/apply/v1/operations/{id}", releases._operation, methods=["GET"]),
        Route("/apply/v1/operations/{id}/events", releases._events, methods=["GET"]),
        Route("/apply/v1/releases/active", releases._active, methods=["GET"]),
        Route("/apply/v1/releases/diff", releases._diff, methods=["GET"]),
        Route("/apply/v1/releases/{id}", releases._release, methods=["GET"]),
        Route("/apply/v1/resolve", releases._resolve, methods=["GET"]),

        # functions: the lifecycle API (service key) and direct invokes (an API key); routed
        # invokes come through a site's host (web/sites.py), scheduled ones from functions/scheduler.py
        Route("/projects/v1/admin/{id}/functions", functions_api._deploy, methods=["POST"]),
        Route("/projects/v1/admin/{id}/functions", functions_api._list, methods=["GET"]),
        Route("/projects/v1/admin/{id}/functions/{name}", functions_api._update, methods=["PATCH"]),
        Route("/projects/v1/admin/{id}/functions/{name}", functions_api._delete, methods=["DELETE"]),
        Route("/projects/v1/admin/{id}/functions/{name}/logs", functions_api._logs, methods=["GET"]),
        Route("/functions/v1/{name}", functions_invoke._invoke,
              methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),

        # storage: a project's blobs (service key); served by Host on pr-<id>.localhost (web/sites.py)
        Route("/storage/v1/blobs/diagnose", storage._diagnose, methods=["GET"]),
        Route("/storage/v1/blobs", storage._ls, methods=["GET"]),
        Route("/storage/v1/blob/{key:path}", storage._get, methods=["GET", "HEAD"]),
        Route("/storage/v1/blob/{key:path}", storage._rm, methods=["DELETE"]),
        Route("/storage/v1/blob/{key:path}", storage._sign, methods=["POST"]),
        Route("/apply/v1/service-asset-put", service_put._put, methods=["POST"]),

        # not served here (yet, or ever offline): a clear 501 for the calls functions make (unavailable.py)
        Route("/mailboxes/v1", unavailable._email, methods=["GET", "POST"]),
        Route("/mailboxes/v1/{path:path}", unavailable._email, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        Route("/ai/v1/{path:path}", unavailable._ai, methods=["GET", "POST"]),
        Route("/generate-image/v1", unavailable._ai, methods=["POST"]),

        # web: subdomains (the sites themselves are served by Host, see the docstring)
        Route("/subdomains/v1", subdomains._claim, methods=["POST"]),
        Route("/subdomains/v1", subdomains._list, methods=["GET"]),
        Route("/subdomains/v1/{name}", subdomains._delete, methods=["DELETE"]),

        # secrets: a project's write-only values, encrypted at rest; jobs: managed runs (hosted only)
        Route("/projects/v1/admin/{id}/secrets", secrets._set, methods=["POST"]),
        Route("/projects/v1/admin/{id}/secrets", secrets._list, methods=["GET"]),
        Route("/projects/v1/admin/{id}/secrets/{key}", secrets._delete, methods=["DELETE"]),
        Route("/jobs/v1/runs", runs._submit, methods=["POST"]),
        Route("/jobs/v1/runs/{id}", runs._get, methods=["GET"]),
        Route("/jobs/v1/runs/{id}", runs._cancel, methods=["DELETE"]),
        Route("/jobs/v1/runs/{id}/logs", runs._logs, methods=["GET"]),
    ]
