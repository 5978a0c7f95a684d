"""Users: creation (shared by both client families and the admin bootstrap) and look-ups."""
import logging
from typing import Optional

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from models import organisations as org_model
from models import users as model
from models.common import utcnow
from services.errors import ApiError, field_error

log = logging.getLogger("accounts.users")


def normalise_email(email: str) -> str:
    """Emails are compared and stored trimmed and lower-case."""
    return email.strip().lower()


class Users:
    """Create and find users."""

    def __init__(self, database, passwords, organisations):
        self.collection = database[model.COLLECTION]
        self.passwords = passwords
        self.organisations = organisations

    async def create(self, *, email: str, password: str, name: Optional[str] = None, first_name: Optional[str] = None,
                     last_name: Optional[str] = None, username: Optional[str] = None, phone: Optional[str] = None,
                     role: str = "user") -> dict:
        """Create a user and their default organisation; a taken email or username is a 422."""
        email = normalise_email(email)
        username = username.lower() if username else None
        await self._check_free(email, username)
        if name is None:
            name = model.join_name(first_name, last_name)
        elif first_name is None and last_name is None:
            first_name, last_name = model.split_name(name)
        now = utcnow()
        user = {
            "_id": ObjectId(), "name": name, "firstName": first_name, "lastName": last_name or "",
            "email": email, "passwordHash": await self.passwords.hash(password), "role": role,
            "isEmailVerified": False, "favoriteBoards": [], "createdAt": now, "updatedAt": now,
        }
        if username:
            user["username"] = username  # absent rather than null: the sparse unique index skips it
        if phone:
            user["phone"] = phone
        # The organisation goes in first, keyed by the new user's id: if the user insert then loses a
        # race for the email, the organisation is removed; if the process dies in between, what is left
        # is an organisation whose only member does not exist, invisible to everyone.
        org = await self.organisations.create(org_model.default_organisation_name(first_name),
                                              org_model.DEFAULT_DESCRIPTION, user["_id"])
        try:
            await self.collection.insert_one(user)
        except DuplicateKeyError:
            await self.organisations.delete(org["_id"])
            await self._check_free(email, username)
            raise field_error("email", "is already taken") from None
        return user

    async def get(self, user_id: ObjectId) -> Optional[dict]:
        """The user with this id, or None."""
        return await self.collection.find_one({"_id": user_id})

    async def find_by_email(self, email: str) -> Optional[dict]:
        """The user with this email (any case), or None."""
        return await self.collection.find_one({"email": normalise_email(email)})

    async def set_password(self, user_id: ObjectId, password: str) -> None:
        """Replace a user's password hash."""
        hashed = await self.passwords.hash(password)
        await self.collection.update_one({"_id": user_id}, {"$set": {"passwordHash": hashed, "updatedAt": utcnow()}})

    async def ensure_admin(self, email: str, password: str, name: str) -> None:
        """Make sure an admin with this email exists: create it, or promote the existing user."""
        existing = await self.find_by_email(email)
        if existing is None:
            try:
                await self.create(email=email, password=password, name=name, role="admin")
                log.info("admin %s created", email)
                return
            except ApiError:  # another process created it first
                pass
            existing = await self.find_by_email(email)
        if existing["role"] != "admin":
            await self.collection.update_one({"_id": existing["_id"]}, {"$set": {"role": "admin", "updatedAt": utcnow()}})
            log.info("user %s promoted to admin", email)

    async def _check_free(self, email: str, username: Optional[str]) -> None:
        if await self.collection.find_one({"email": email}, {"_id": 1}):
            raise field_error("email", "is already taken")
        if username and await self.collection.find_one({"username": username}, {"_id": 1}):
            raise field_error("username", "is already taken")

    async def mark_verified(self, user_id: ObjectId, email: str) -> bool:
        """Set isEmailVerified if the user still has this email; False if not."""
        result = await self.collection.update_one(
            {"_id": user_id, "email": email}, {"$set": {"isEmailVerified": True, "updatedAt": utcnow()}})
        return result.matched_count == 1
