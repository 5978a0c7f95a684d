"""The /api endpoints of the organisation client: organisations, and the users their members may see."""

from bson import ObjectId

from handlers import openapi_examples as ex
from handlers.base import BaseHandler
from handlers.documented import operation
from models import organisations as org_model
from models.schemas import organisations as schemas
from models.schemas.responses import ID, TIME, USER, closed, success
from services.errors import forbidden


class ApiHandler(BaseHandler):
    """Every /api handler: the caller is authenticated before any of these run."""

    @property
    def caller_id(self) -> ObjectId:
        return self.current_user["_id"]


API_USER = success("User retrieved successfully", data=USER, user=USER)


class ApiUserHandler(ApiHandler):
    openapi = {
        "get": operation(
            "A user: the caller or someone sharing an organisation",
            "api",
            200,
            API_USER,
            path=("id",),
            errors=(403,),
            examples={"response": ex.success("User retrieved successfully", data=ex.USER, user=ex.USER)},
        ),
    }

    async def get(self, user_id: str) -> None:
        user = await self.services.users.require(self.path_id(user_id, "User"))
        await self.services.organisations.require_visible(self.caller_id, user["_id"])
        view = self.user_view(user)
        self.send_success("User retrieved successfully", data=view, user=view)


ORGANISATION = closed({"orgId": ID, "name": {"type": "string"}, "description": {"type": "string"}})

ORGANISATIONS = success(
    "Organisations retrieved successfully", data=closed({"organisations": {"type": "array", "items": ORGANISATION}})
)

ORGANISATION_CREATED = success("Organisation created successfully", data=ORGANISATION)


class OrganisationsHandler(ApiHandler):
    openapi = {
        "get": operation(
            "The caller's organisations",
            "api",
            200,
            ORGANISATIONS,
            examples={
                "response": ex.success(
                    "Organisations retrieved successfully", data={"organisations": [ex.ORGANISATION]}
                )
            },
        ),
        "post": operation(
            "Create an organisation; the caller becomes a member (a 422 past MAX_ORGANISATIONS_PER_USER)",
            "api",
            201,
            ORGANISATION_CREATED,
            body=schemas.CREATE,
            examples={
                "request": {"name": "Design team", "description": "Everyone working on the new boards"},
                "response": ex.success(
                    "Organisation created successfully",
                    data={
                        "orgId": ex.ORG_ID,
                        "name": "Design team",
                        "description": "Everyone working on the new boards",
                    },
                ),
            },
        ),
    }

    async def get(self) -> None:
        orgs = await self.services.organisations.for_user(self.caller_id)
        self.send_success(
            "Organisations retrieved successfully", data={"organisations": [org_model.public_view(org) for org in orgs]}
        )

    async def post(self) -> None:
        body = self.json_body(schemas.CREATE)
        org = await self.services.organisations.create_as_caller(
            body["name"], body.get("description") or "", self.caller_id
        )
        self.send_success("Organisation created successfully", status=201, data=org_model.public_view(org))


ORGANISATION_FOUND = success("Organisation retrieved successfully", data=ORGANISATION)


class OrganisationHandler(ApiHandler):
    openapi = {
        "get": operation(
            "An organisation (members only)",
            "api",
            200,
            ORGANISATION_FOUND,
            path=("orgId",),
            errors=(403,),
            examples={"response": ex.success("Organisation retrieved successfully", data=ex.ORGANISATION)},
        ),
    }

    async def get(self, org_id: str) -> None:
        org = await self.services.organisations.require_member(self.path_id(org_id, "Organisation"), self.caller_id)
        self.send_success("Organisation retrieved successfully", data=org_model.public_view(org))


MEMBER_ADDED = success("User added to organisation successfully")


class OrganisationUsersHandler(ApiHandler):
    """Only a member may invite: left open, anyone could join anyone to any organisation and then read its
    members' records (CWE-862). And it only invites: a membership nobody accepted would hand a stranger the
    invited user's record through GET /api/users/:id, and let anyone flood their organisation list (CWE-639)."""

    openapi = {
        "post": operation(
            "Add a user to an organisation (members only)",
            "api",
            200,
            MEMBER_ADDED,
            path=("orgId",),
            body=schemas.ADD_MEMBER,
            errors=(403, 429),
            examples={
                "request": {"userId": ex.MARK_ID},
                "response": ex.success("User added to organisation successfully"),
            },
        ),
    }

    async def post(self, org_id: str) -> None:
        org_id = self.path_id(org_id, "Organisation")
        body = self.json_body(schemas.ADD_MEMBER)
        org = await self.services.organisations.require_member(org_id, self.caller_id)
        user = await self.services.users.require(ObjectId(body["userId"]))
        await self.services.organisations.invite(org["_id"], user["_id"], self.caller_id, self.client_address())
        self.send_success("User added to organisation successfully")


class MembershipHandler(ApiHandler):
    """DELETE: the caller leaves an organisation. Nobody removes anyone else (CWE-639)."""

    openapi = {
        "delete": operation(
            "Leave an organisation (userId must be the caller's own id)",
            "api",
            204,
            path=("orgId", "userId"),
            errors=(403,),
        ),
    }

    async def delete(self, org_id: str, user_id: str) -> None:
        org_id = self.path_id(org_id, "Organisation")
        if self.path_id(user_id, "User") != self.caller_id:
            raise forbidden("You can only remove yourself from an organisation")
        await self.services.organisations.leave(org_id, self.caller_id)
        self.no_content()


INVITATION = closed(
    {
        "orgId": ID,
        "name": {"type": "string"},
        "description": {"type": "string"},
        "invitedBy": closed({"userId": ID, "firstName": {"type": "string"}, "lastName": {"type": "string"}}),
        "invitedAt": TIME,
    }
)

INVITATIONS = success(
    "Invitations retrieved successfully",
    data=closed({"invitations": {"type": "array", "items": INVITATION, "maxItems": org_model.MAX_INVITATIONS_LISTED}}),
)


class InvitationsHandler(ApiHandler):
    openapi = {
        "get": operation(
            "The caller's pending invitations, newest first (at most 100)",
            "api",
            200,
            INVITATIONS,
            examples={
                "response": ex.success(
                    "Invitations retrieved successfully",
                    data={
                        "invitations": [
                            {
                                **ex.ORGANISATION,
                                "invitedBy": {
                                    "userId": "665f1c2ab3e4d5f6a7b8c9d7",
                                    "firstName": "Ada",
                                    "lastName": "Obi",
                                },
                                "invitedAt": "2026-11-30T09:15:00.000Z",
                            }
                        ]
                    },
                )
            },
        ),
    }

    async def get(self) -> None:
        invitations = await self.services.organisations.invitations_for(self.caller_id)
        self.send_success("Invitations retrieved successfully", data={"invitations": invitations})


class InvitationHandler(ApiHandler):
    """DELETE: the caller declines an invitation. Only the invited user's own invitations are reachable."""

    openapi = {
        "delete": operation("Decline an invitation", "api", 204, path=("orgId",)),
    }

    async def delete(self, org_id: str) -> None:
        await self.services.organisations.decline(self.path_id(org_id, "Invitation"), self.caller_id)
        self.no_content()


INVITATION_ACCEPTED = success("Invitation accepted", data=ORGANISATION)


class AcceptInvitationHandler(ApiHandler):
    openapi = {
        "post": operation(
            "Accept an invitation: the caller becomes a member (a 422 past MAX_ORGANISATIONS_PER_USER, the "
            "invitation kept)",
            "api",
            200,
            INVITATION_ACCEPTED,
            path=("orgId",),
            errors=(422,),
            examples={"response": ex.success("Invitation accepted", data=ex.ORGANISATION)},
        ),
    }

    async def post(self, org_id: str) -> None:
        org = await self.services.organisations.accept(self.path_id(org_id, "Invitation"), self.caller_id)
        self.send_success("Invitation accepted", data=org_model.public_view(org))
