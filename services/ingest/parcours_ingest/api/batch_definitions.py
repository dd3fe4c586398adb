"""The tenant's column-mapping profiles (`/v1/mapping-profiles`, for CSV/XLSX batches) and PDF split
rules (`/v1/split-rules`): create or replace with PUT, list, read, delete. A definition is checked
when saved (an unknown target field is a 422 at its path), and frozen into each batch that uses it."""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, create_model

from parcours_runtime.problems import PROBLEM_JSON, Problem, field_error
from parcours_runtime.tenancy import Tenant, authenticate
from parcours_ingest.domain.csv_mapping import MappingProfile, profile_issues
from parcours_ingest.domain.pdf_split import SplitRule
from parcours_ingest.store import batches as store
from parcours_ingest.store.batch_models import MappingProfileRow, SplitRuleRow

router = APIRouter()
_PROBLEM = {"content": {PROBLEM_JSON: {}}}
Name = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,63}$", description="The definition's name, chosen by the tenant.")]


def _mount(prefix: str, *, model: type[BaseModel], row: type[MappingProfileRow] | type[SplitRuleRow], what: str,
           issues: Callable[[Any], list] = lambda definition: []) -> None:
    """The five routes of one kind of named definition."""

    Saved = create_model(f"Saved{model.__name__}", __base__=model, name=(str, ...), created_at=(datetime, ...),
                         updated_at=(datetime, ...))
    tags = [prefix.rsplit("/", 1)[-1]]

    def saved(found) -> dict:
        return {**found.definition, "name": found.name, "created_at": found.created_at, "updated_at": found.updated_at}

    @router.put(f"{prefix}/{{name}}", response_model=Saved, tags=tags, summary=f"Create or replace a {what}",
                responses={200: {"description": "Replaced."}, 201: {"description": "Created."}, 401: _PROBLEM,
                           422: {**_PROBLEM, "description": "Invalid; each error's `pointer` is the path in the body."}})
    async def put(name: Name, definition: model, request: Request,  # type: ignore[valid-type]
                  tenant: Tenant = Depends(authenticate)) -> Response:
        found = issues(definition)
        if found:
            raise Problem(422, f"The {what} cannot be used.", slug=f"invalid-{tags[0][:-1]}",
                          errors=[field_error(issue.path, issue.detail, issue.code) for issue in found])
        async with request.app.state.ctx.sessions.begin() as session:
            created = await store.put_definition(session, row, tenant_id=tenant.id, name=name,
                                                 definition=definition.model_dump(mode="json", exclude_none=True))
            current = await store.get_definition(session, row, tenant_id=tenant.id, name=name)
        body = Saved.model_validate(saved(current)).model_dump(mode="json", exclude_none=True)
        return JSONResponse(body, status_code=201 if created else 200)

    @router.get(prefix, response_model=list[Saved], tags=tags, summary=f"List the {what}s",
                response_model_exclude_none=True, responses={401: _PROBLEM})
    async def list_all(request: Request, tenant: Tenant = Depends(authenticate)) -> list[dict]:
        async with request.app.state.ctx.sessions() as session:
            return [saved(found) for found in await store.list_definitions(session, row, tenant_id=tenant.id)]

    @router.get(f"{prefix}/{{name}}", response_model=Saved, tags=tags, summary=f"Read a {what}",
                response_model_exclude_none=True, responses={401: _PROBLEM, 404: _PROBLEM})
    async def read(name: Name, request: Request, tenant: Tenant = Depends(authenticate)) -> dict:
        async with request.app.state.ctx.sessions() as session:
            found = await store.get_definition(session, row, tenant_id=tenant.id, name=name)
        if found is None:
            raise Problem(404, f"No {what} {name!r} for this tenant.")
        return saved(found)

    @router.delete(f"{prefix}/{{name}}", status_code=204, tags=tags, summary=f"Delete a {what}",
                   responses={401: _PROBLEM, 404: _PROBLEM})
    async def remove(name: Name, request: Request, tenant: Tenant = Depends(authenticate)) -> Response:
        """Batches already received keep the definition they were received with."""
        async with request.app.state.ctx.sessions.begin() as session:
            deleted = await store.delete_definition(session, row, tenant_id=tenant.id, name=name)
        if not deleted:
            raise Problem(404, f"No {what} {name!r} for this tenant.")
        return Response(status_code=204)


_mount("/v1/mapping-profiles", model=MappingProfile, row=MappingProfileRow, what="mapping profile",
       issues=profile_issues)
_mount("/v1/split-rules", model=SplitRule, row=SplitRuleRow, what="split rule")
