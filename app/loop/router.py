"""/api/v1/cases/{case_id}/actions/{action} — one route per action of the loop, each with its own
permission in the policy layer; If-Match (the case's ETag) is required."""

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response

from app.auth.policy import Principal, require
from app.cases import detail as cases
from app.cases.schemas import CaseDetail
from app.db import DbSession
from app.geometry import CRS
from app.http import ApiRoute
from app.i18n import RequestLang
from app.loop.service import ACTIONS, Action, perform
from app.responses import FastJSON
from app.schemas import IdPath

router = APIRouter(prefix="/api/v1/cases", tags=["loop"], route_class=ApiRoute)

IfMatch = Annotated[
    str | None, Header(alias="If-Match", description="The case's ETag (its version)")
]


def _route(spec: Action) -> None:
    body_type = spec.body

    async def run(
        case_id: IdPath,
        body: body_type,  # type: ignore[valid-type]
        request: Request,
        session: DbSession,
        lang: RequestLang,
        who: Annotated[Principal, Depends(require(spec.permission))],
        if_match: IfMatch = None,
    ) -> Response:
        await perform(session, case_id, spec.name, body, who, if_match, request)
        out, version = await cases.detail(session, case_id, who, lang, CRS.WGS84, request)
        return FastJSON(out, headers={"ETag": f'"{version}"'})

    run.__name__ = f"case_{spec.name}"
    router.add_api_route(
        f"/{{case_id}}/actions/{spec.name}",
        run,
        methods=["POST"],
        response_model=CaseDetail,
        summary=spec.summary,
        responses={
            409: {
                "description": "Not allowed in the case's state; `allowed_actions` lists what is"
            },
            412: {"description": "The case changed since your ETag"},
            428: {"description": "If-Match is required"},
        },
    )


for _spec in ACTIONS.values():
    _route(_spec)
