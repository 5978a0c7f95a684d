"""Profile photos: the image type read from the bytes, one photo per user kept in MongoDB."""
import secrets
from typing import Optional

from bson import Binary, ObjectId

from models import photos as model
from models.common import utcnow
from services.errors import ApiError, field_error

# Magic numbers of the accepted formats; the file name and the declared type are never believed.
_JPEG = b"\xff\xd8\xff"
_PNG = b"\x89PNG\r\n\x1a\n"
_GIFS = (b"GIF87a", b"GIF89a")


def sniff(data: bytes) -> Optional[str]:
    """The content type of a JPEG, PNG, GIF or WebP image, judged by its first bytes; None otherwise."""
    if data.startswith(_JPEG):
        return "image/jpeg"
    if data.startswith(_PNG):
        return "image/png"
    if data[:6] in _GIFS:
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class Photos:
    """Store, read and remove users' photos."""

    def __init__(self, database, max_bytes: int):
        self.collection = database[model.COLLECTION]
        self.max_bytes = max_bytes

    def check(self, data: bytes) -> str:
        """The content type of an acceptable photo; 413 when too large, 422 when not an accepted image."""
        if len(data) > self.max_bytes:
            raise ApiError(413, f"Photo too large: at most {self.max_bytes} bytes")
        # Typed by content, so an HTML or SVG file renamed .png is never served as an image (CWE-434).
        content_type = sniff(data)
        if content_type is None:
            raise field_error("file", "must be a JPEG, PNG, WebP or GIF image")
        return content_type

    async def save(self, user_id: ObjectId, data: bytes, content_type: str) -> str:
        """Replace the user's photo; returns its new version (a new one on every upload)."""
        version = secrets.token_hex(8)
        await self.collection.replace_one({"_id": user_id}, {
            "_id": user_id, "data": Binary(data), "contentType": content_type, "size": len(data),
            "version": version, "updatedAt": utcnow(),
        }, upsert=True)
        return version

    async def get(self, user_id: ObjectId) -> Optional[dict]:
        """The user's photo document, or None."""
        return await self.collection.find_one({"_id": user_id})

    async def delete(self, user_id: ObjectId) -> None:
        """Remove the user's photo, if any."""
        await self.collection.delete_one({"_id": user_id})
