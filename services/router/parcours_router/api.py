"""Customer directory API: each tenant keeps its customers' contacts and preferred channels."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from parcours_contracts import CustomerChanged
from parcours_router.domain.customers import check_customer
from parcours_router.store.customers import (
    REF_PATTERN,
    CustomerPage,
    CustomerRead,
    CustomerWrite,
    delete_customer,
    find_customer,
    list_customers,
    put_customer,
)
from parcours_runtime.problems import Problem, field_error
from parcours_runtime.tenancy import Tenant, authenticate
from parcours_runtime.uow import UnitOfWork

router = APIRouter(prefix="/v1/customers", tags=["customers"])

CustomerRef = Annotated[str, Path(pattern=REF_PATTERN, description="The tenant's own reference of the customer.")]
CurrentTenant = Annotated[Tenant, Depends(authenticate)]


@router.put("/{ref}", response_model=CustomerRead, status_code=status.HTTP_200_OK,
            responses={201: {"model": CustomerRead, "description": "Created"}},
            summary="Create or replace a customer")
async def put(ref: CustomerRef, entry: CustomerWrite, request: Request, response: Response,
              tenant: CurrentTenant) -> CustomerRead:
    """201 when the customer is new, 200 when it replaced the previous entry."""
    ctx = request.app.state.ctx
    issues = check_customer(contact_emails=[c.email for c in entry.contacts], channels=entry.channels,
                            offered=ctx.settings.channels, tags=entry.tags, timezone=entry.timezone)
    if issues:
        raise Problem(422, "The customer entry is not acceptable.",
                      errors=[field_error(issue.path, issue.detail, issue.code) for issue in issues])
    async with UnitOfWork(ctx.sessions) as uow:
        customer, created = await put_customer(uow.session, tenant_id=tenant.id, ref=ref, entry=entry)
        uow.publish(CustomerChanged(tenant_id=tenant.id, correlation_id=f"customer-{ref}", customer_ref=ref,
                                    name=entry.name, group=entry.group, language=entry.language, tags=entry.tags,
                                    timezone=entry.timezone))
        await uow.commit()
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return CustomerRead.of(customer)


@router.get("/{ref}", response_model=CustomerRead, summary="Read a customer")
async def get(ref: CustomerRef, request: Request, tenant: CurrentTenant) -> CustomerRead:
    async with request.app.state.ctx.sessions() as session:
        customer = await find_customer(session, tenant_id=tenant.id, ref=ref)
    if customer is None:
        raise _not_found(ref)
    return CustomerRead.of(customer)


@router.get("", response_model=CustomerPage, summary="List customers in reference order")
async def list_(
    request: Request, tenant: CurrentTenant,
    group: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=128, description="`next_cursor` of the previous page.")] = None,
) -> CustomerPage:
    after = _decode_cursor(cursor) if cursor else None
    async with request.app.state.ctx.sessions() as session:
        # one extra row tells whether another page follows
        customers = await list_customers(session, tenant_id=tenant.id, group=group, after=after, limit=limit + 1)
    page = customers[:limit]
    more = len(customers) > limit
    return CustomerPage(items=[CustomerRead.of(c) for c in page],
                        next_cursor=_encode_cursor(page[-1].ref) if more else None)


@router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a customer")
async def delete(ref: CustomerRef, request: Request, tenant: CurrentTenant) -> Response:
    async with UnitOfWork(request.app.state.ctx.sessions) as uow:
        if not await delete_customer(uow.session, tenant_id=tenant.id, ref=ref):
            raise _not_found(ref)
        uow.publish(CustomerChanged(tenant_id=tenant.id, correlation_id=f"customer-{ref}", customer_ref=ref,
                                    deleted=True))
        await uow.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _not_found(ref: str) -> Problem:
    # Another tenant's customer answers exactly like a missing one.
    return Problem(404, f"No customer {ref!r} in your directory.")


def _encode_cursor(ref: str) -> str:
    return base64.urlsafe_b64encode(ref.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        ref = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        ref = ""
    if not re.fullmatch(REF_PATTERN, ref):
        error = field_error(["cursor"], "Not a cursor this API returned.", "invalid_cursor")
        raise Problem(422, "The request does not match the expected schema.", errors=[{**error, "in": "query"}])
    return ref
