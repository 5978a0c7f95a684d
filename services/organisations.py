"""Organisations, their members, and the invitations that make members."""

import datetime as dt
import math

from bson import ObjectId
from pymongo import DESCENDING
from pymongo.errors import DuplicateKeyError

from models import organisations as model
from models import users as user_model
from models.common import ID_ONLY, utcnow
from services.auth import greeting_name
from services.errors import ApiError, field_error, forbidden, not_found, unauthenticated

NEWEST_FIRST = [("createdAt", DESCENDING), ("_id", DESCENDING)]
JOIN_ORDER = [("createdAt", 1), ("_id", 1)]
# The window MAX_INVITATIONS_PER_HOUR counts over.
INVITATION_WINDOW_SECONDS = 3600


class Organisations:
    """Create organisations, invite users into them, and manage who belongs to them."""

    def __init__(self, database, outbox, max_per_user: int, invitations_per_address):
        self.database = database
        # MAX_ORGANISATIONS_PER_USER: what bounds a user's listing and share_one's $in (CWE-770).
        self.max_per_user = max_per_user
        self.invitations_per_address = invitations_per_address  # an HourlyBudget: INVITATIONS_PER_ADDRESS_PER_HOUR
        self.organisations = database[model.ORGANISATIONS]
        self.memberships = database[model.MEMBERSHIPS]
        self.invitations = database[model.INVITATIONS]
        self.users = database[user_model.COLLECTION]  # read only: the names of those who invite
        self.outbox = outbox  # the invited user's email

    async def create(self, name: str, description: str, creator_id: ObjectId, org_id: ObjectId = None) -> dict:
        """Create an organisation with its creator as the first member."""
        now = utcnow()
        org = {
            "_id": org_id or ObjectId(),
            "name": name,
            "description": description,
            "createdBy": creator_id,
            "createdAt": now,
        }
        await self.organisations.insert_one(org)
        await self.memberships.insert_one({"orgId": org["_id"], "userId": creator_id, "createdAt": now})
        return org

    async def delete(self, org_id: ObjectId) -> None:
        """Remove an organisation with every membership in it and every invitation to it."""
        await self.memberships.delete_many({"orgId": org_id})
        await self.invitations.delete_many({"orgId": org_id})
        await self.organisations.delete_one({"_id": org_id})

    async def remove_user(self, user_id: ObjectId) -> None:
        """Remove a user's memberships and the invitations sent to and by them; the organisations stay."""
        await self.memberships.delete_many({"userId": user_id})
        await self.invitations.delete_many({"userId": user_id})
        await self.invitations.delete_many({"invitedBy": user_id})

    async def get(self, org_id: ObjectId) -> dict | None:
        """The organisation with this id, or None."""
        return await self.organisations.find_one({"_id": org_id})

    async def require(self, org_id: ObjectId) -> dict:
        """The organisation with this id; 404 when there is none."""
        org = await self.get(org_id)
        if org is None:
            raise not_found("Organisation not found")
        return org

    async def is_member(self, org_id: ObjectId, user_id: ObjectId) -> bool:
        """True when the user belongs to the organisation: one lookup on the unique (orgId, userId) index."""
        return await self.memberships.find_one({"orgId": org_id, "userId": user_id}, ID_ONLY) is not None

    async def require_member(self, org_id: ObjectId, user_id: ObjectId) -> dict:
        """The organisation if the user belongs to it: 404 when there is no such organisation, else 403."""
        org = await self.require(org_id)
        if not await self.is_member(org_id, user_id):  # access by membership, not by knowing the id (CWE-639)
            raise forbidden("You are not a member of this organisation")
        return org

    async def for_user(self, user_id: ObjectId) -> list:
        """The user's organisations in the order they joined: two indexed queries, no $lookup."""
        memberships = self.memberships.find({"userId": user_id}, model.ORG_ID_ONLY).sort(JOIN_ORDER)
        org_ids = [doc["orgId"] async for doc in memberships]
        by_id = await self._by_id(self.organisations, org_ids)
        return [by_id[org_id] for org_id in org_ids if org_id in by_id]  # a vanished organisation is skipped

    async def share_one(self, user_id: ObjectId, other_id: ObjectId) -> bool:
        """True when two users belong to at least one organisation in common."""
        org_ids = [doc["orgId"] async for doc in self.memberships.find({"userId": user_id}, model.ORG_ID_ONLY)]
        if not org_ids:
            return False
        shared = await self.memberships.find_one({"userId": other_id, "orgId": {"$in": org_ids}}, ID_ONLY)
        return shared is not None

    async def require_visible(self, viewer_id: ObjectId, user_id: ObjectId) -> None:
        """403 unless the viewer is that user or shares an organisation with them (invitations never count)."""
        if viewer_id != user_id and not await self.share_one(viewer_id, user_id):  # CWE-639
            raise forbidden("You do not share an organisation with this user")

    async def invite(self, org_id: ObjectId, user_id: ObjectId, inviter_id: ObjectId, address: str) -> None:
        """Invite a user into an organisation; a member or an already invited user is left as they are;
        a new invitation past MAX_INVITATIONS_PER_HOUR from one inviter, or past INVITATIONS_PER_ADDRESS_PER_HOUR
        from the client's address, is a 429 (and is undone)."""
        self.database.require_unique_indexes()  # invitations.org_user_unique makes the upsert one invitation
        if await self.is_member(org_id, user_id):
            return
        try:
            result = await self.invitations.update_one(
                {"orgId": org_id, "userId": user_id},
                {"$setOnInsert": {"invitedBy": inviter_id, "createdAt": utcnow()}},
                upsert=True,
            )
        except DuplicateKeyError:
            result = None  # a concurrent invitation of the same user won the upsert: the outcome is the same
        created = result is not None and result.upserted_id is not None
        if created:
            await self._limit_per_address(address, result.upserted_id)
            await self._limit_invitations(inviter_id, result.upserted_id)
        # An accept may have made them a member since the check above: then this invitation is stale.
        if await self.is_member(org_id, user_id):
            await self.invitations.delete_one({"orgId": org_id, "userId": user_id})
            return
        # Either account deleted meanwhile: its cascade may have run before this write (CWE-367).
        gone = await self._missing_users([user_id, inviter_id])
        if gone:
            await self.invitations.delete_one({"orgId": org_id, "userId": user_id, "invitedBy": inviter_id})
            raise unauthenticated() if inviter_id in gone else not_found("User not found")
        if created:  # a repeated invitation mails nothing again
            self.outbox.later("invitation email", self._mail_invited(org_id, user_id, inviter_id))

    async def _mail_invited(self, org_id: ObjectId, user_id: ObjectId, inviter_id: ObjectId) -> None:
        """Email the invited user, within EMAILS_PER_ADDRESS_PER_HOUR. The inviter's name and the organisation's
        name are the inviter's free text: mailed only when the inviter has proven an address, as greeting_name
        does for a registrant's name, or anyone could mail their text to any user (CWE-451)."""
        invitee = await self.users.find_one({"_id": user_id}, model.INVITEE_MAIL)
        inviter = await self.users.find_one({"_id": inviter_id}, model.INVITER_MAIL)
        org = await self.get(org_id)
        if invitee is None or inviter is None or org is None:
            return  # deleted since: nothing to tell
        if not await self.outbox.may_send(invitee["email"], "invitation"):
            return  # an inbox is never flooded with invitations either (CWE-799); the list still shows it
        trusted = bool(inviter.get("isEmailVerified"))
        inviter_name = f"{inviter.get('firstName', '')} {inviter.get('lastName', '')}".strip() if trusted else None
        await self.outbox.invitation_email(
            invitee["email"], greeting_name(invitee), inviter_name or None, org["name"] if trusted else None
        )

    async def _limit_per_address(self, address: str, new_id: ObjectId) -> None:
        """Undo the new invitation and answer 429 past the address's hourly budget: many throwaway accounts at one
        place would otherwise each spend a per-inviter cap and bury a victim's real invitations (CWE-770).
        Only new invitations count: inviting a member or an invited user again creates nothing."""
        try:
            await self.invitations_per_address.spend(address)
        except ApiError:
            await self.invitations.delete_one({"_id": new_id})
            raise

    async def _limit_invitations(self, inviter_id: ObjectId, new_id: ObjectId) -> None:
        """Undo the new invitation and answer 429 with Retry-After when it makes more than MAX_INVITATIONS_PER_HOUR
        pending from the inviter in the last hour: one stranger cannot bury a user's real invitations (CWE-770).
        Counted after the write, so concurrent invites see each other and never overshoot the cap."""
        since = utcnow() - dt.timedelta(seconds=INVITATION_WINDOW_SECONDS)
        recent = {"invitedBy": inviter_id, "createdAt": {"$gt": since}}
        cap = model.MAX_INVITATIONS_PER_HOUR
        if await self.invitations.count_documents(recent, limit=cap + 1) <= cap:
            return
        await self.invitations.delete_one({"_id": new_id})
        oldest = await self.invitations.find_one(recent, model.CREATED_AT_ONLY, sort=[("createdAt", 1)])
        frees_at = (oldest["createdAt"] if oldest else since) + dt.timedelta(seconds=INVITATION_WINDOW_SECONDS)
        retry_after = max(1, math.ceil((frees_at - utcnow()).total_seconds()))
        raise ApiError(429, "Too many invitations, try again later", headers={"Retry-After": str(retry_after)})

    async def _missing_users(self, user_ids: list) -> set:
        """Which of these user ids no longer name a user (one query on _id)."""
        found = {doc["_id"] async for doc in self.users.find({"_id": {"$in": user_ids}}, ID_ONLY)}
        return set(user_ids) - found

    async def create_as_caller(self, name: str, description: str, creator_id: ObjectId) -> dict:
        """create() for a signed-in caller; undone (401) if their account was deleted meanwhile, or (422) if it
        makes more than MAX_ORGANISATIONS_PER_USER."""
        await self._check_room(creator_id)
        org = await self.create(name, description, creator_id)
        if await self._missing_users([creator_id]):  # erase's cascade may have run before our writes (CWE-367)
            await self.delete(org["_id"])
            raise unauthenticated()
        if await self._over_cap(creator_id):  # concurrent creates each saw room: the one over the cap is undone
            await self.delete(org["_id"])
            raise self._cap_error()
        return org

    async def _check_room(self, user_id: ObjectId) -> None:
        """422 when the user already belongs to MAX_ORGANISATIONS_PER_USER organisations."""
        if await self.memberships.count_documents({"userId": user_id}, limit=self.max_per_user) >= self.max_per_user:
            raise self._cap_error()

    async def _over_cap(self, user_id: ObjectId) -> bool:
        """True when a write just made the user a member of more than MAX_ORGANISATIONS_PER_USER (counted after
        it, so concurrent writes see each other and the cap is never overshot)."""
        cap = self.max_per_user
        return await self.memberships.count_documents({"userId": user_id}, limit=cap + 1) > cap

    def _cap_error(self) -> ApiError:
        return field_error(
            "body", f"you already belong to {self.max_per_user} organisations, the most one user may (leave one first)"
        )

    async def invitations_for(self, user_id: ObjectId) -> list:
        """The user's pending invitations, newest first, at most MAX_INVITATIONS_LISTED, as the user sees them."""
        invitations = (
            await self.invitations.find({"userId": user_id})
            .sort(NEWEST_FIRST)
            .limit(model.MAX_INVITATIONS_LISTED)
            .to_list(None)
        )
        orgs = await self._by_id(self.organisations, [inv["orgId"] for inv in invitations])
        inviters = await self._by_id(self.users, [inv["invitedBy"] for inv in invitations], model.INVITER_NAME)
        # One whose organisation or inviter is being deleted right now is left out.
        return [
            model.invitation_view(inv, orgs[inv["orgId"]], inviters[inv["invitedBy"]])
            for inv in invitations
            if inv["orgId"] in orgs and inv["invitedBy"] in inviters
        ]

    async def accept(self, org_id: ObjectId, user_id: ObjectId) -> dict:
        """Turn the user's invitation into a membership; 404 when there is no invitation."""
        self.database.require_unique_indexes()  # before the claim: a 503 must leave the invitation in place
        await self._check_room(user_id)  # before the claim too: the invitation stays for after leaving one
        # Claimed by deleting it: of two accepts, or an accept and a decline, exactly one finds it.
        invitation = await self.invitations.find_one_and_delete({"orgId": org_id, "userId": user_id})
        if invitation is None:
            raise not_found("Invitation not found")
        org = await self.require(org_id)  # an invitation outliving its organisation joins nothing
        joined = await self.add_member(org_id, user_id)
        if joined and await self._over_cap(user_id):  # concurrent accepts each saw room: undone, invitation kept
            await self.memberships.delete_one({"orgId": org_id, "userId": user_id})
            try:
                await self.invitations.insert_one(invitation)
            except DuplicateKeyError:
                pass  # invited again meanwhile: that invitation stands
            raise self._cap_error()
        # An invite that ran between the claim and the membership may have left a new invitation.
        await self.invitations.delete_one({"orgId": org_id, "userId": user_id})
        if await self._missing_users([user_id]):
            # The account was deleted meanwhile; its cascade may have run before this membership (CWE-367).
            await self.memberships.delete_one({"orgId": org_id, "userId": user_id})
            raise unauthenticated()
        return org

    async def decline(self, org_id: ObjectId, user_id: ObjectId) -> None:
        """Delete the user's invitation; 404 when there is none."""
        result = await self.invitations.delete_one({"orgId": org_id, "userId": user_id})
        if result.deleted_count == 0:
            raise not_found("Invitation not found")

    async def leave(self, org_id: ObjectId, user_id: ObjectId) -> None:
        """End the user's membership; 404 when the organisation is unknown or they are not a member."""
        await self.require(org_id)
        result = await self.memberships.delete_one({"orgId": org_id, "userId": user_id})
        if result.deleted_count == 0:
            raise not_found("You are not a member of this organisation")

    async def add_member(self, org_id: ObjectId, user_id: ObjectId) -> bool:
        """Make the user a member of the organisation (True) or leave an existing member as they are (False)."""
        self.database.require_unique_indexes()  # memberships.org_user_unique makes the upsert one membership
        try:
            result = await self.memberships.update_one(
                {"orgId": org_id, "userId": user_id}, {"$setOnInsert": {"createdAt": utcnow()}}, upsert=True
            )
        except DuplicateKeyError:
            return False  # a concurrent add of the same member won the upsert: the outcome is the same
        return result.upserted_id is not None

    @staticmethod
    async def _by_id(collection, ids: list, projection: dict = None) -> dict:
        """id -> document for the given ids, in one query on _id."""
        if not ids:
            return {}
        return {doc["_id"]: doc async for doc in collection.find({"_id": {"$in": list(set(ids))}}, projection)}
