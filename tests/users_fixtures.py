"""Helpers shared by the /users tests (no tests here): accounts, admins, images and multipart bodies."""
import datetime as dt
import struct
import zlib

from bson import ObjectId

from tests.helpers import Account, sign_up

BOUNDARY = "users-test-boundary-7d1f"


async def make_admin(api, services, email: str = "admin@example.com", name: str = "Grace Admin") -> Account:
    """Register, then promote in the store (the role is read from the store on every request)."""
    account = await sign_up(api, email=email, name=name)
    await services.users.collection.update_one({"_id": ObjectId(account.id)}, {"$set": {"role": "admin"}})
    return account


async def stored(services, user_id: str) -> dict:
    """The user document as stored, or None."""
    return await services.users.collection.find_one({"_id": ObjectId(user_id)})


async def set_created_at(services, user_id: str, when: dt.datetime) -> None:
    await services.users.collection.update_one({"_id": ObjectId(user_id)}, {"$set": {"createdAt": when}})


def png(width: int = 1, height: int = 1) -> bytes:
    """A valid RGB PNG, built by hand."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x80\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def multipart(fields: dict = None, files: dict = None, boundary: str = BOUNDARY) -> dict:
    """Request keyword arguments for a multipart/form-data body; files: name -> (filename, bytes, type)."""
    parts = []
    for name, value in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                     + value.encode() + b"\r\n")
    for name, (filename, data, content_type) in (files or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f"Content-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return {"body": body, "headers": {"Content-Type": f"multipart/form-data; boundary={boundary}"}}


def photo_form(data: bytes, filename: str = "photo.png", content_type: str = "image/png", **fields) -> dict:
    return multipart(fields, {"file": (filename, data, content_type)})
