"""The /api endpoints of the organisation client: organisations, and the users their members may see."""

from bson import ObjectId

from handlers.base import BaseHandler
from models import organisations as org_model
from models.schemas import organisations as schemas
from services.errors import forbidden


class ApiHandler(BaseHandler):
    """Every /api handler: the caller is authenticated before any of these run."""

    @property
    def caller_id(self) -> ObjectId:
        return self.current_user["_id"]


class ApiUserHandler(ApiHandler):
    async def get(self, user_id: str) -> None:
        user = await self.services.users.require(self.path_id(user_id, "User"))
        await self.services.organisations.require_visible(self.caller_id, user["_id"])
        view = self.user_view(user)
        self.send_success("User retrieved successfully", data=view, user=view)


class OrganisationsHandler(ApiHandler):
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


class OrganisationHandler(ApiHandler):
    async def get(self, org_id: str) -> None:
        org = await self.services.organisations.require_member(self.path_id(org_id, "Organisation"), self.caller_id)
        self.send_success("Organisation retrieved successfully", data=org_model.public_view(org))


class OrganisationUsersHandler(ApiHandler):
    """Only a member may invite: left open, anyone could join anyone to any organisation and then read its
    members' records (CWE-862). And it only invites: a membership nobody accepted would hand a stranger the
    invited user's record through GET /api/users/:id, and let anyone flood their organisation list (CWE-639)."""

    async def post(self, org_id: str) -> None:
        org_id = self.path_id(org_id, "Organisation")
        body = self.json_body(schemas.ADD_MEMBER)
        org = await self.services.organisations.require_member(org_id, self.caller_id)
        user = await self.services.users.require(ObjectId(body["userId"]))
        await self.services.organisations.invite(org["_id"], user["_id"], self.caller_id, self.client_address())
        self.send_success("User added to organisation successfully")


class MembershipHandler(ApiHandler):
    """DELETE: the caller leaves an organisation. Nobody removes anyone else (CWE-639)."""

    async def delete(self, org_id: str, user_id: str) -> None:
        org_id = self.path_id(org_id, "Organisation")
        if self.path_id(user_id, "User") != self.caller_id:
            raise forbidden("You can only remove yourself from an organisation")
        await self.services.organisations.leave(org_id, self.caller_id)
        self.no_content()


class InvitationsHandler(ApiHandler):
    async def get(self) -> None:
        invitations = await self.services.organisations.invitations_for(self.caller_id)
        self.send_success("Invitations retrieved successfully", data={"invitations": invitations})


class InvitationHandler(ApiHandler):
    """DELETE: the caller declines an invitation. Only the invited user's own invitations are reachable."""

    async def delete(self, org_id: str) -> None:
        await self.services.organisations.decline(self.path_id(org_id, "Invitation"), self.caller_id)
        self.no_content()


class AcceptInvitationHandler(ApiHandler):
    async def post(self, org_id: str) -> None:
        org = await self.services.organisations.accept(self.path_id(org_id, "Invitation"), self.caller_id)
        self.send_success("Invitation accepted", data=org_model.public_view(org))
