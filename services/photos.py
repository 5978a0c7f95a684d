"""Profile photos: every upload decoded and redrawn off the IOLoop (upright, at most 512 px, no
metadata), kept in MongoDB at each served size, and served by version. docs/photos.md says why."""
import asyncio
import hmac
import io
import os
import secrets
import warnings
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Optional

from bson import Binary, ObjectId
from PIL import Image, ImageCms, ImageOps

from models import photos as model
from models.common import utcnow
from services.errors import ApiError, field_error

# The formats accepted, judged by Pillow from the bytes: the file name and declared type are never believed.
FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
# What Pillow calls a phone's JPEG that carries a second picture after the first (Multi-Picture Format).
JPEG_FORMATS = ("JPEG", "MPO")
NOT_AN_IMAGE = "must be a JPEG, PNG, WebP or GIF image"
JPEG_QUALITY = 85
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))

# Pillow only warns between its own MAX_IMAGE_PIXELS and twice that; as an error, such an image is
# refused like any other bomb, never decoded (CWE-409).
warnings.simplefilter("error", Image.DecompressionBombWarning)


@dataclass(frozen=True)
class Rendition:
    """One served size of a photo, encoded."""
    data: bytes
    width: int
    height: int


@dataclass(frozen=True)
class ProcessedPhoto:
    """An upload as it will be stored: one content type, one rendition per size in model.SIZES."""
    content_type: str
    renditions: dict


def process(data: bytes, max_pixels: int) -> ProcessedPhoto:
    """Decode an upload fully, stand it upright in sRGB, drop its metadata, encode every size (CPU: executor only)."""
    image = flatten(to_srgb(decode(data, max_pixels)))
    image.thumbnail((model.LARGEST, model.LARGEST), Image.Resampling.LANCZOS)
    content_type = "image/png" if image.mode == "RGBA" else "image/jpeg"
    renditions = {}
    for size in sorted(model.SIZES, reverse=True):
        image.thumbnail((size, size), Image.Resampling.LANCZOS)  # each from the one above: never upscaled
        renditions[size] = Rendition(encode(image), image.width, image.height)
    return ProcessedPhoto(content_type, renditions)


def decode(data: bytes, max_pixels: int) -> Image.Image:
    """The first frame, decoded to its last byte and turned as its EXIF orientation says; 422 otherwise."""
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
        # From the header, before a single pixel is decoded: a small file can claim gigapixels (CWE-409).
        if image.width * image.height > max_pixels:
            raise too_many_pixels(max_pixels)
        if image.format in JPEG_FORMATS:
            # libjpeg decodes at 1/2, 1/4 or 1/8 scale while staying at least 512 px: a fraction of the work.
            image.draft("RGB", (model.LARGEST, model.LARGEST))
        image.load()  # the whole image: a truncated file or a PNG header before HTML fails here (CWE-434)
        return ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_many_pixels(max_pixels) from None
    except ApiError:
        raise
    except Exception:  # Pillow's decoders fail on malformed input with many exception types, never a 500
        raise field_error("file", NOT_AN_IMAGE) from None


def too_many_pixels(max_pixels: int) -> ApiError:
    return field_error("file", f"must be at most {max_pixels} pixels (width × height)")


def to_srgb(image: Image.Image) -> Image.Image:
    """The pixels converted from the embedded colour profile to sRGB, so the profile can go unseen."""
    profile = image.info.get("icc_profile")
    if not profile:
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        return ImageCms.profileToProfile(image, source, SRGB, outputMode="RGBA" if image.mode == "RGBA" else "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image  # a broken or mismatched profile: the pixels as they are, read as sRGB


def flatten(image: Image.Image) -> Image.Image:
    """RGBA when any pixel is see-through, else RGB or L: the modes the encoders take."""
    if image.mode.startswith("I") or image.mode == "F":
        image = image.convert("I").point(lambda value: value / 256).convert("L")  # 16-bit grey to 8
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] < 255:
            return rgba
        image = rgba  # an alpha channel nothing uses: opaque after all
    return image if image.mode in ("RGB", "L") else image.convert("RGB")


def encode(image: Image.Image) -> bytes:
    """PNG when there is transparency, else JPEG; with no metadata of any kind."""
    # Only pixels are written: no EXIF (GPS, camera serial), XMP, ICC, comments or text chunks (CWE-359).
    image.info = {}
    out = io.BytesIO()
    if image.mode == "RGBA":
        image.save(out, "PNG")
    else:
        image.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


class Photos:
    """Process, store, read and remove users' photos."""

    def __init__(self, database, max_bytes: int, max_pixels: int, executor: Executor):
        self.collection = database[model.COLLECTION]
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.executor = executor
        # One core is left to the IOLoop and bcrypt: photos queue rather than starve them (CWE-400).
        self._decoding = asyncio.Semaphore(max(1, (os.cpu_count() or 1) - 1))

    async def prepare(self, data: bytes) -> ProcessedPhoto:
        """An upload processed for storing; 413 when too large, 422 when not a whole accepted image."""
        if len(data) > self.max_bytes:
            raise ApiError(413, f"Photo too large: at most {self.max_bytes} bytes")
        return await self._process(data)

    async def _process(self, data: bytes) -> ProcessedPhoto:
        async with self._decoding:
            return await asyncio.get_running_loop().run_in_executor(self.executor, process, data, self.max_pixels)

    async def save(self, user_id: ObjectId, photo: ProcessedPhoto) -> str:
        """Replace the user's photo, every size at once; returns its new version (a new one on every upload)."""
        # The version is the public URL's only secret: 128 random bits, never derived from the id (CWE-330).
        version = secrets.token_hex(16)
        await self.collection.replace_one({"_id": user_id}, {
            "_id": user_id, "version": version, "updatedAt": utcnow(), **stored_fields(photo)}, upsert=True)
        return version

    async def current(self, user_id: ObjectId, size: int) -> Optional[dict]:
        """The user's photo at this size as served ({data, contentType, etag}), or None."""
        doc = await self.collection.find_one(
            {"_id": user_id}, {"version": 1, "contentType": 1, f"renditions.{size}": 1})
        if doc is not None and "renditions" not in doc:
            doc = await self._redraw_stored_upload(user_id)
        return served(doc, size) if doc else None

    async def _redraw_stored_upload(self, user_id: ObjectId) -> Optional[dict]:
        """A photo stored before uploads were redrawn holds the upload's own bytes, metadata and all:
        processed now, once, like a new upload (its version kept, so its URL still works), or removed."""
        doc = await self.collection.find_one({"_id": user_id})
        if doc is None or "renditions" in doc:
            return doc  # removed or redrawn meanwhile
        try:
            photo = await self._process(bytes(doc["data"]))
        except ApiError:  # not a whole image after all: never served (CWE-434)
            await self.collection.delete_one({"_id": user_id, "version": doc["version"]})
            return None
        fields = stored_fields(photo)
        await self.collection.update_one({"_id": user_id, "version": doc["version"]},
                                         {"$set": fields, "$unset": {"data": "", "size": ""}})
        return {"_id": user_id, "version": doc["version"], **fields}

    async def published(self, user_id: ObjectId, version: str, size: int) -> Optional[dict]:
        """The photo at this size if version is its current one, else None."""
        photo = await self.current(user_id, size)
        # Constant time, so the version cannot be found out byte by byte (CWE-208).
        if photo is None or not hmac.compare_digest(photo["version"].encode(), version.encode()):
            return None
        return photo

    async def delete(self, user_id: ObjectId) -> None:
        """Remove the user's photo, if any."""
        await self.collection.delete_one({"_id": user_id})


def stored_fields(photo: ProcessedPhoto) -> dict:
    return {"contentType": photo.content_type,
            "renditions": {str(size): {"data": Binary(r.data), "width": r.width, "height": r.height}
                           for size, r in photo.renditions.items()}}


def served(doc: dict, size: int) -> dict:
    return {"data": bytes(doc["renditions"][str(size)]["data"]), "contentType": doc["contentType"],
            "version": doc["version"], "etag": model.etag(doc["version"], size)}
