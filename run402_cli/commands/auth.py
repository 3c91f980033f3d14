"""`run402 auth magic-link|verify|create-user|invite-user|set-password|settings|providers`:
a project's end-user auth, administered from the shell.

The project is `--project <prj_...>`, else the active project. Output as the official CLI:
`{"status":"ok", ...}` on one line, except `providers` (pretty, as received). The passkey
subcommands are left out: they need a browser authenticator, which the shell (and the local
gateway) does not have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import typer

from run402_cli import output
from run402_cli.commands._options import client, group, project_opt, resolve_project
from run402_cli.errors import UsageError

app = group(help="A project's end-user auth: magic links, users, passwords, settings, providers.")

INTENTS = ("signin", "invite", "claim", "recovery")
PREFERRED = ("password", "magic_link", "oauth_google", "passkey", "null")
PUBLIC_SIGNUP = ("open", "known_email", "invite_only")


def _required(value: Optional[str], message: str, flag: str) -> str:
    if value is None or value == "":
        raise UsageError(message, hint="Run with --help to see the flags.", details={"flag": flag})
    return value


def _bool_flag(value: Optional[str], flag: str) -> Optional[bool]:
    if value is None:
        return None
    if value not in ("true", "false"):
        raise UsageError(
            f"{flag} must be 'true' or 'false'", code="BAD_FLAG",
            hint="Use the literal strings 'true' or 'false'.",
            details={"flag": flag, "value": value, "allowed": ["true", "false"]},
        )
    return value == "true"


def _choice(value: Optional[str], flag: str, allowed: tuple[str, ...]) -> Optional[str]:
    if value is not None and value not in allowed:
        listed = ", ".join(allowed[:-1]) + f", or {allowed[-1]}"
        raise UsageError(
            f"{flag} must be {listed}", code="BAD_FLAG",
            details={"flag": flag, "value": value, "allowed": list(allowed)},
        )
    return value


# --- magic-link / verify -------------------------------------------------------------------


@dataclass(frozen=True)
class MagicLinkOptions:
    email: str
    redirect: str
    intent: Optional[str] = None
    state: Optional[str] = None
    project_id: Optional[str] = None


@app.command("magic-link")
def magic_link(
    ctx: typer.Context,
    email: Optional[str] = typer.Option(None, "--email", help="Required: the recipient's email."),
    redirect: Optional[str] = typer.Option(None, "--redirect", help="Required: where the link lands."),
    intent: Optional[str] = typer.Option(
        None, "--intent", help="signin (default), invite (uses the service key), claim or recovery."
    ),
    state: Optional[str] = typer.Option(None, "--state", help="client_state returned by verify."),
    project: Optional[str] = project_opt(),
) -> None:
    """Send a one-time sign-in link (15 minutes); the first use creates the user.

    Example: run402 auth magic-link --email ada@example.com --redirect http://localhost:3000/cb
    """
    opts = MagicLinkOptions(
        email=_required(email, "Missing --email", "--email"),
        redirect=_required(redirect, "Missing --redirect <url>", "--redirect"),
        intent=_choice(intent, "--intent", INTENTS), state=state, project_id=project,
    )
    run_magic_link(opts, ctx)


def run_magic_link(opts: MagicLinkOptions, ctx: typer.Context) -> None:
    from run402_cli.api import auth

    _, entry = resolve_project(ctx, opts.project_id)
    service_key = entry["service_key"] if opts.intent == "invite" else None  # a trusted invite
    with client(ctx) as c:
        auth.magic_link(c, entry["anon_key"], opts.email, opts.redirect, opts.intent, opts.state,
                        service_key=service_key)
    output.emit(
        {"status": "ok", "email": opts.email, "redirect_url": opts.redirect,
         "intent": opts.intent or "signin"},
        compact=True,
    )


@dataclass(frozen=True)
class VerifyOptions:
    token: str
    project_id: Optional[str] = None


@app.command("verify")
def verify(
    ctx: typer.Context,
    token: Optional[str] = typer.Option(None, "--token", help="Required: the one-time magic-link token."),
    project: Optional[str] = project_opt(),
) -> None:
    """Exchange a magic-link token for a session (access_token + refresh_token).

    Example: run402 auth verify --token abc123def456
    """
    run_verify(VerifyOptions(token=_required(token, "Missing --token", "--token"), project_id=project), ctx)


def run_verify(opts: VerifyOptions, ctx: typer.Context) -> None:
    from run402_cli.api import auth

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        data = auth.verify(c, entry["anon_key"], opts.token)
    output.emit({"status": "ok", **(data if isinstance(data, dict) else {"result": data})}, compact=True)


# --- create-user / invite-user -------------------------------------------------------------


@dataclass(frozen=True)
class CreateUserOptions:
    email: str
    admin: Optional[bool] = None
    invite: bool = False
    redirect: Optional[str] = None
    state: Optional[str] = None
    project_id: Optional[str] = None


@app.command("create-user")
def create_user(
    ctx: typer.Context,
    email: Optional[str] = typer.Option(None, "--email", help="Required: the user's email."),
    admin: Optional[str] = typer.Option(None, "--admin", help="true or false: set project_admin."),
    invite: bool = typer.Option(False, "--invite", help="Also send a trusted invite link."),
    redirect: Optional[str] = typer.Option(None, "--redirect", help="Where the invite lands (needed with --invite)."),
    state: Optional[str] = typer.Option(None, "--state", help="client_state for the invite."),
    project: Optional[str] = project_opt(),
) -> None:
    """Create or update a project user with the service key (optionally invite them).

    Example: run402 auth create-user --email ada@example.com --admin true
    """
    opts = CreateUserOptions(
        email=_required(email, "Missing --email", "--email"), admin=_bool_flag(admin, "--admin"),
        invite=invite, redirect=redirect, state=state, project_id=project,
    )
    if opts.invite and not opts.redirect:
        raise UsageError(
            "Missing --redirect <url> when --invite is used",
            hint="run402 auth create-user --email <addr> --invite --redirect <url>",
            details={"flag": "--redirect"},
        )
    run_create_user(opts, ctx)


def run_create_user(opts: CreateUserOptions, ctx: typer.Context) -> None:
    from run402_cli.api import auth

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        data = auth.create_user(
            c, entry["anon_key"], entry["service_key"], opts.email, is_admin=opts.admin,
            send_invite=opts.invite, redirect_url=opts.redirect, client_state=opts.state,
        )
    output.emit({"status": "ok", **(data if isinstance(data, dict) else {"result": data})}, compact=True)


@app.command("invite-user")
def invite_user(
    ctx: typer.Context,
    email: Optional[str] = typer.Option(None, "--email", help="Required: the user's email."),
    redirect: Optional[str] = typer.Option(None, "--redirect", help="Required: where the invite lands."),
    admin: Optional[str] = typer.Option(None, "--admin", help="true or false: set project_admin first."),
    state: Optional[str] = typer.Option(None, "--state", help="client_state for the invite."),
    project: Optional[str] = project_opt(),
) -> None:
    """Create or update a user and send them a trusted invite link.

    Example: run402 auth invite-user --email ada@example.com --redirect http://localhost:3000/cb
    """
    # An invite is create-user with the invite always sent: one code path for both.
    opts = CreateUserOptions(
        email=_required(email, "Missing --email", "--email"),
        redirect=_required(redirect, "Missing --redirect <url>", "--redirect"),
        admin=_bool_flag(admin, "--admin"), invite=True, state=state, project_id=project,
    )
    run_create_user(opts, ctx)


# --- set-password --------------------------------------------------------------------------


@dataclass(frozen=True)
class SetPasswordOptions:
    token: str
    new: str
    current: Optional[str] = None
    project_id: Optional[str] = None


@app.command("set-password")
def set_password(
    ctx: typer.Context,
    token: Optional[str] = typer.Option(None, "--token", help="Required: the user's access_token."),
    new: Optional[str] = typer.Option(None, "--new", help="Required: the new password."),
    current: Optional[str] = typer.Option(None, "--current", help="The current password, once one is set."),
    project: Optional[str] = project_opt(),
) -> None:
    """Set, change or reset a user's password, as that user (their access token).

    Example: run402 auth set-password --token eyJ... --new "correct horse battery"
    """
    opts = SetPasswordOptions(
        token=_required(token, "Missing --token <bearer_token>", "--token"),
        new=_required(new, "Missing --new <password>", "--new"), current=current, project_id=project,
    )
    run_set_password(opts, ctx)


def run_set_password(opts: SetPasswordOptions, ctx: typer.Context) -> None:
    from run402_cli.api import auth

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        auth.set_password(c, entry["anon_key"], opts.token, opts.new, opts.current)
    output.emit({"status": "ok"}, compact=True)


# --- settings / providers ------------------------------------------------------------------


@dataclass(frozen=True)
class SettingsOptions:
    patch: tuple[tuple[str, Any], ...]
    project_id: Optional[str] = None


@app.command("settings")
def settings_(
    ctx: typer.Context,
    allow_password_set: Optional[str] = typer.Option(
        None, "--allow-password-set", help="true or false: whether users may set passwords."
    ),
    preferred: Optional[str] = typer.Option(
        None, "--preferred", help="password, magic_link, oauth_google, passkey or null."
    ),
    public_signup: Optional[str] = typer.Option(
        None, "--public-signup", help="open, known_email or invite_only."
    ),
    require_admin_passkey: Optional[str] = typer.Option(
        None, "--require-admin-passkey", help="true or false: project_admin sessions need a passkey."
    ),
    project: Optional[str] = project_opt(),
) -> None:
    """Update a project's auth settings with the service key (at least one flag).

    Example: run402 auth settings --public-signup invite_only --allow-password-set false
    """
    allow = _bool_flag(allow_password_set, "--allow-password-set")
    require = _bool_flag(require_admin_passkey, "--require-admin-passkey")
    _choice(preferred, "--preferred", PREFERRED)
    _choice(public_signup, "--public-signup", PUBLIC_SIGNUP)
    patch: list[tuple[str, Any]] = []
    if allow is not None:
        patch.append(("allow_password_set", allow))
    if preferred is not None:
        patch.append(("preferred_sign_in_method", None if preferred == "null" else preferred))
    if public_signup is not None:
        patch.append(("public_signup", public_signup))
    if require is not None:
        patch.append(("require_passkey_for_project_admin", require))
    if not patch:
        raise UsageError(
            "Set at least one auth setting flag",
            hint="--allow-password-set, --preferred, --public-signup or --require-admin-passkey",
        )
    run_settings(SettingsOptions(patch=tuple(patch), project_id=project), ctx)


def run_settings(opts: SettingsOptions, ctx: typer.Context) -> None:
    from run402_cli.api import auth

    _, entry = resolve_project(ctx, opts.project_id)
    patch = dict(opts.patch)
    with client(ctx) as c:
        data = auth.settings(c, entry["anon_key"], entry["service_key"], patch)
    output.emit({"status": "ok", **patch, **(data if isinstance(data, dict) else {})}, compact=True)


@dataclass(frozen=True)
class ProvidersOptions:
    project_id: Optional[str] = None


@app.command("providers")
def providers(ctx: typer.Context, project: Optional[str] = project_opt()) -> None:
    """List the sign-in methods a project's users can use.

    Example: run402 auth providers
    """
    run_providers(ProvidersOptions(project_id=project), ctx)


def run_providers(opts: ProvidersOptions, ctx: typer.Context) -> None:
    from run402_cli.api import auth

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        data = auth.providers(c, entry["anon_key"])
    output.emit(data)
