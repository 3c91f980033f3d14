"""What this gateway does not serve, answered at once with a clear envelope, never a hang or
a fake success. Deployed functions reach these through `@run402/functions` (email.send,
ai.*), so each answer says what to do instead.

- Not yet (`NOT_AVAILABLE`, 501): project email comes in a later version of the local gateway.
- Never offline (`NOT_AVAILABLE_LOCALLY`, 501): AI translation, moderation and image
  generation need the hosted models.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from run402_cli.local.errors import GatewayError

__all__: list[str] = []  # handlers only: local/routes.py lists them

_HOSTED = "RUN402_API_BASE=https://api.run402.com"


def _not_yet(what: str, instead: str) -> GatewayError:
    return GatewayError(501, "NOT_AVAILABLE", f"{what} is not available in this version of the local gateway",
                        hint=instead, next_actions=[{"action": "use_hosted_api", "env": _HOSTED}])


async def _email(request: Request) -> JSONResponse:
    raise _not_yet("Project email (email.send, /mailboxes/v1)",
                   f"Run against the hosted API ({_HOSTED}); auth mails already land in `run402 local mailbox`")


async def _ai(request: Request) -> JSONResponse:
    raise GatewayError(501, "NOT_AVAILABLE_LOCALLY", "AI translation, moderation and image generation need the "
                       "hosted models and cannot run on the local gateway",
                       hint=f"Run against the hosted API ({_HOSTED})",
                       next_actions=[{"action": "use_hosted_api", "env": _HOSTED}])
