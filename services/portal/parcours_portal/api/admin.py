"""Operator routes (admin token): console users, for the first admin of a tenant and the dev stack."""

from __future__ import annotations

import asyncio
import uuid
from typing import Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from parcours_portal.domain import auth
from parcours_portal.store import queries
from parcours_runtime.problems import Problem
from parcours_runtime.tenancy import require_admin
from parcours_runtime.uow import UnitOfWork

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])


class UserBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(min_length=1, max_length=64)
    email: EmailStr
    name: str = Field(min_length=1, max_length=200)
    role: Literal[auth.ROLES]  # type: ignore[valid-type]
    password: str = Field(min_length=12, max_length=200, description="Hashed with argon2id; never stored as is.")


class UserRead(BaseModel):
    id: uuid.UUID
    tenant_id: str
    email: str
    name: str
    role: str


@router.put("/users", response_model=UserRead, summary="Create or update a console user",
            responses={201: {"description": "Created"}, 409: {"description": "The e-mail belongs to another tenant"}})
async def put_user(body: UserBody, request: Request) -> JSONResponse:
    password_hash = await asyncio.to_thread(auth.hash_password, body.password)
    async with UnitOfWork(request.app.state.ctx.sessions) as uow:
        user, created = await queries.put_user(uow.session, tenant_id=body.tenant_id, email=body.email,
                                               name=body.name, role=body.role, password_hash=password_hash)
        if user is None:
            raise Problem(409, "This e-mail address is a user of another tenant.", slug="user-of-another-tenant")
        await uow.commit()
    read = UserRead(id=user.id, tenant_id=user.tenant_id, email=user.email, name=user.name, role=user.role)
    return JSONResponse(read.model_dump(mode="json"), status_code=201 if created else 200)
