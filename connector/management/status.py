"""``POST /management/status/{revoke|suspend|resume}``: change the status of a credential this
node issued (operator key).

The body names the credential itself (``{"credential": …}``: its entry of the matching purpose
is used) or one entry (``{"statusListCredential": URL, "statusListIndex": "n"}``). Revoking is
final; suspending can be undone with ``resume``. Unknown lists or indices are 404, a purpose
that does not fit the action (resuming a revocation) is 409; nothing changes on a refusal.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field, model_validator

from connector.management.assets import _Body, field_problem, not_found
from connector.management.auth import require_operator
from connector.problems import ProblemDetails, ProblemError, parse_body, read_json_object
from connector.status_lists import STATUS_LISTS, StatusError, entries_of
from credentials.errors import CredentialsError

ACTIONS = {"revoke": "revocation", "suspend": "suspension", "resume": "suspension"}


class StatusChange(_Body):
    credential: dict[str, Any] | None = None
    status_list_credential: str | None = Field(None, alias="statusListCredential")
    status_list_index: str | None = Field(None, alias="statusListIndex", pattern=r"^[0-9]+$")

    @model_validator(mode="after")
    def _one_way(self) -> StatusChange:
        by_entry = self.status_list_credential is not None or self.status_list_index is not None
        if (self.credential is None) == (not by_entry) or (
                by_entry and (self.status_list_credential is None
                              or self.status_list_index is None)):
            raise ValueError("send either credential, or statusListCredential together with "
                             "statusListIndex")
        return self


@require_operator
async def change_status(request: web.Request) -> web.Response:
    action = request.match_info["action"]
    if action not in ACTIONS:
        raise not_found("status action", action)
    body = parse_body(StatusChange, await read_json_object(request))
    if body.credential is not None:
        try:
            entries = [(url, index) for url, index, purpose in entries_of(body.credential)
                       if purpose == ACTIONS[action]]
        except CredentialsError as exc:
            raise field_problem("credential.credentialStatus", str(exc)) from None
        if not entries:
            raise field_problem("credential.credentialStatus",
                                f"the credential has no {ACTIONS[action]} entry")
        url, index = entries[0]
    else:
        assert body.status_list_credential is not None and body.status_list_index is not None
        url, index = body.status_list_credential, int(body.status_list_index)
    lists = request.config_dict[STATUS_LISTS]
    if lists.name_of(url) is None:
        raise not_found("status list of this node", url)
    try:
        await lists.set_status(url, index, action, actor="operator")
    except StatusError as exc:
        status = 409 if "needs a" in str(exc) else 404
        raise ProblemError(ProblemDetails(status, "status-refused", "Status not changed",
                                          str(exc))) from None
    return web.json_response({"statusListCredential": url, "statusListIndex": str(index),
                              "action": action})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/management/status/{action}", change_status)


__all__ = ["add_routes"]
