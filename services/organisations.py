"""Organisations and their members."""
from bson import ObjectId

from models import organisations as model
from models.common import utcnow


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
