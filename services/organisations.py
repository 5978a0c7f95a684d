"""Organisations and their members."""
from typing import Optional

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from models import organisations as model
from models.common import utcnow
from services.errors import forbidden, not_found


class Organisations:
    """Create organisations and manage who belongs to them."""

    def __init__(self, database):
        self.organisations = database[model.ORGANISATIONS]
        self.memberships = database[model.MEMBERSHIPS]

    async def create(self, name: str, description: str, creator_id: ObjectId, org_id: ObjectId = None) -> dict:
        """Create an organisation with its creator as the first member."""
        now = utcnow()
        org = {"_id": org_id or ObjectId(), "name": name, "description": description,
               "createdBy": creator_id, "createdAt": now}
        await self.organisations.insert_one(org)
        await self.memberships.insert_one({"orgId": org["_id"], "userId": creator_id, "createdAt": now})
        return org

    async def delete(self, org_id: ObjectId) -> None:
        """Remove an organisation and every membership in it."""
        await self.memberships.delete_many({"orgId": org_id})
        await self.organisations.delete_one({"_id": org_id})

    async def remove_user(self, user_id: ObjectId) -> None:
        """Remove a user from every organisation; the organisations stay with their other members."""
        await self.memberships.delete_many({"userId": user_id})

    async def get(self, org_id: ObjectId) -> Optional[dict]:
        """The organisation with this id, or None."""
        return await self.organisations.find_one({"_id": org_id})

    async def is_member(self, org_id: ObjectId, user_id: ObjectId) -> bool:
        """True when the user belongs to the organisation: one lookup on the unique (orgId, userId) index."""
        return await self.memberships.find_one({"orgId": org_id, "userId": user_id}, {"_id": 1}) is not None

    async def require_member(self, org_id: ObjectId, user_id: ObjectId) -> dict:
        """The organisation if the user belongs to it: 404 when there is no such organisation, else 403."""
        org = await self.get(org_id)
        if org is None:
            raise not_found("Organisation not found")
        if not await self.is_member(org_id, user_id):  # access by membership, not by knowing the id (CWE-639)
            raise forbidden("You are not a member of this organisation")
        return org

    async def for_user(self, user_id: ObjectId) -> list:
        """The user's organisations in the order they joined, in one aggregation led by the user_joined index."""
        pipeline = [
            {"$match": {"userId": user_id}},
            {"$sort": {"createdAt": 1, "_id": 1}},
            {"$lookup": {"from": model.ORGANISATIONS, "localField": "orgId", "foreignField": "_id", "as": "org"}},
            {"$unwind": "$org"},  # drops a membership whose organisation is gone
            {"$replaceRoot": {"newRoot": "$org"}},
        ]
        return await self.memberships.aggregate(pipeline).to_list(None)

    async def share_one(self, user_id: ObjectId, other_id: ObjectId) -> bool:
        """True when two users belong to at least one organisation in common."""
        org_ids = [doc["orgId"] async for doc in self.memberships.find({"userId": user_id}, {"orgId": 1, "_id": 0})]
        if not org_ids:
            return False
        shared = await self.memberships.find_one({"userId": other_id, "orgId": {"$in": org_ids}}, {"_id": 1})
        return shared is not None

    async def require_visible(self, viewer_id: ObjectId, user_id: ObjectId) -> None:
        """403 unless the viewer is that user or shares an organisation with them."""
        if viewer_id != user_id and not await self.share_one(viewer_id, user_id):  # CWE-639
            raise forbidden("You do not share an organisation with this user")

    async def add_member(self, org_id: ObjectId, user_id: ObjectId) -> None:
        """Make the user a member of the organisation; an existing member is left as they are."""
        try:
            await self.memberships.update_one({"orgId": org_id, "userId": user_id},
                                              {"$setOnInsert": {"createdAt": utcnow()}}, upsert=True)
        except DuplicateKeyError:
            pass  # a concurrent add of the same member won the upsert: the outcome is the same
