"""Favourite boards: atomic updates of one array in the user document."""

from bson import ObjectId
from pymongo import ReturnDocument

from models import users as model
from models.common import utcnow
from services.errors import field_error, not_found

# Concurrent add/remove of one board can make a conditional push miss; a few rounds settle it.
FAVOURITE_ROUNDS = 5


class Favourites:
    """A user's favourite boards, oldest first, no duplicates, at most MAX_FAVOURITES."""

    def __init__(self, database):
        self.collection = database[model.COLLECTION]

    async def add(self, user_id: ObjectId, board_id: str) -> dict:
        """Append a board to the favourites in one atomic update; already there: unchanged; full: 422."""
        for _ in range(FAVOURITE_ROUNDS):
            # Not yet there and room left, checked and pushed in one document update: no lost or doubled writes.
            doc = await self._favourites_update(
                {
                    "_id": user_id,
                    "favoriteBoards": {"$ne": board_id},
                    f"favoriteBoards.{model.MAX_FAVOURITES - 1}": {"$exists": False},
                },
                {"$push": {"favoriteBoards": board_id}},
            )
            if doc is not None:
                return doc
            doc = await self._favourites(user_id)
            if board_id in doc["favoriteBoards"]:
                return doc
            if len(doc["favoriteBoards"]) >= model.MAX_FAVOURITES:
                raise field_error("boardId", f"favourites are full: at most {model.MAX_FAVOURITES} boards")
        return doc

    async def remove(self, user_id: ObjectId, board_id: str) -> dict:
        """Remove a board from the favourites; not there: unchanged."""
        doc = await self._favourites_update(
            {"_id": user_id, "favoriteBoards": board_id}, {"$pull": {"favoriteBoards": board_id}}
        )
        return doc or await self._favourites(user_id)

    async def _favourites_update(self, query: dict, update: dict) -> dict | None:
        return await self.collection.find_one_and_update(
            query,
            {**update, "$set": {"updatedAt": utcnow()}},
            projection={"favoriteBoards": 1},
            return_document=ReturnDocument.AFTER,
        )

    async def _favourites(self, user_id: ObjectId) -> dict:
        doc = await self.collection.find_one({"_id": user_id}, {"favoriteBoards": 1})
        if doc is None:
            raise not_found("User not found")
        return doc
