"""Helpers shared by the /users tests (no tests here): accounts, admins, images and multipart bodies."""

import datetime as dt
import io
import struct
import zlib

from bson import ObjectId
from PIL import ExifTags, Image, ImageCms

from tests.helpers import Account, Store, sign_up

BOUNDARY = "users-test-boundary-7d1f"


async def make_admin(api, services, email: str = "admin@example.com", name: str = "Grace Admin") -> Account:
    """Register, then promote in the store (the role is read from the store on every request)."""
    store = Store(services.database)
    account = await sign_up(api, email=email, name=name)
    await store.users.update_one({"_id": ObjectId(account.id)}, {"$set": {"role": "admin"}})
    return account


async def stored(services, user_id: str) -> dict:
    """The user document as stored, or None."""
    store = Store(services.database)
    return await store.users.find_one({"_id": ObjectId(user_id)})


async def set_created_at(services, user_id: str, when: dt.datetime) -> None:
    store = Store(services.database)
    await store.users.update_one({"_id": ObjectId(user_id)}, {"$set": {"createdAt": when}})


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png(width: int = 1, height: int = 1) -> bytes:
    """A valid RGB PNG, built by hand."""
    rows = b"".join(b"\x00" + b"\xff\x80\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b"")
    )


def png_bomb(width: int, height: int, rgb: bool = False) -> bytes:
    """A complete, valid black PNG of width x height (1-bit grey, or 8-bit RGB): kilobytes on the wire that
    Pillow would decode into width * height bytes (four times that for RGB)."""
    row = b"\x00" * (1 + (width * 3 if rgb else (width + 7) // 8))
    packer = zlib.compressobj(9)
    rows_per_piece = max(1, (1 << 20) // len(row))
    pieces = [packer.compress(row * min(rows_per_piece, height - done)) for done in range(0, height, rows_per_piece)]
    header = struct.pack(">IIBBBBB", width, height, 8 if rgb else 1, 2 if rgb else 0, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", b"".join(pieces) + packer.flush())
        + png_chunk(b"IEND", b"")
    )


def encoded(image: Image.Image, image_format: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, image_format, **options)
    return out.getvalue()


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


RED, BLUE = (255, 0, 0), (0, 0, 255)
GPS_LATITUDE = (51.0, 30.0, 12.5)


def camera_jpeg(width: int = 4000, height: int = 3000, orientation: int = 6) -> bytes:
    """What a phone writes: stored sideways (EXIF orientation 6: turn 90 degrees clockwise to show), with
    GPS, camera, XMP, an ICC profile and a comment. Blue, with the stored top-left quadrant red."""
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, width // 2, height // 2))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "SpyCam"
    exif[ExifTags.Base.BodySerialNumber] = "SERIAL-0042"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps.update(
        {
            ExifTags.GPS.GPSLatitudeRef: "N",
            ExifTags.GPS.GPSLatitude: GPS_LATITUDE,
            ExifTags.GPS.GPSLongitudeRef: "W",
            ExifTags.GPS.GPSLongitude: (0.0, 7.0, 39.0),
        }
    )
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encoded(
        image,
        "JPEG",
        quality=90,
        exif=exif.tobytes(),
        icc_profile=srgb,
        comment=b"taken at home",
        xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">SECRET-XMP</x:xmpmeta>',
    )


def jpeg_markers(data: bytes) -> list:
    """The marker bytes of a JPEG's segments up to its image data (0xE1 is APP1: EXIF or XMP)."""
    assert data[:2] == b"\xff\xd8"
    markers, at = [], 2
    while data[at] == 0xFF and data[at + 1] != 0xDA:
        markers.append(data[at + 1])
        at += 2 + struct.unpack(">H", data[at + 2 : at + 4])[0]
    return markers


def multipart(fields: dict = None, files: dict = None, boundary: str = BOUNDARY) -> dict:
    """Request keyword arguments for a multipart/form-data body; files: name -> (filename, bytes, type)."""
    parts = []
    for name, value in (fields or {}).items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode() + b"\r\n"
        )
    for name, (filename, data, content_type) in (files or {}).items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return {"body": body, "headers": {"Content-Type": f"multipart/form-data; boundary={boundary}"}}


def photo_form(data: bytes, filename: str = "photo.png", content_type: str = "image/png", **fields) -> dict:
    return multipart(fields, {"file": (filename, data, content_type)})
