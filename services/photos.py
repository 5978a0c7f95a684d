"""Profile photos: every upload decoded and redrawn off the IOLoop (upright, at most 512 px, no
metadata), kept in MongoDB at each served size, and served by version. docs/using/photos.md says why."""

import asyncio
import ctypes
import ctypes.util
import hmac
import io
import secrets
import warnings
from concurrent.futures import Executor
from dataclasses import dataclass

from bson import Binary, ObjectId
from PIL import ExifTags, Image, ImageCms

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
ORIENTATION = ExifTags.Base.Orientation
# How each EXIF orientation is undone (as Pillow's ImageOps.exif_transpose does it).
TRANSPOSITIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Modes Pillow holds in one byte a pixel; others take four (RGB padded), or two (16-bit grey).
ONE_BYTE_MODES = ("1", "L", "P")
# Modes reduced premultiplied, so the colour of see-through pixels does not bleed into their neighbours.
PREMULTIPLIED = {"RGBA": "RGBa", "LA": "La"}
# Output rows per strip while shrinking: a strip of a 6,000-px-wide image at factor 5 is a few MB.
STRIP_ROWS = 32

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


def process(data: bytes, max_pixels: int, max_decode_bytes: int) -> ProcessedPhoto:
    """Decode an upload fully, stand it upright in sRGB, drop its metadata, encode every size (CPU: executor only)."""
    image, orientation = decode(data, max_pixels, max_decode_bytes)
    # The full-size image is the only large buffer: shrunk in strips, then dropped, before any other step.
    image = upright(shrink(image), orientation)
    image = flatten(to_srgb(image))
    image.thumbnail((model.LARGEST, model.LARGEST), Image.Resampling.LANCZOS)
    content_type = "image/png" if image.mode == "RGBA" else "image/jpeg"
    renditions = {}
    for size in sorted(model.SIZES, reverse=True):
        image.thumbnail((size, size), Image.Resampling.LANCZOS)  # each from the one above: never upscaled
        renditions[size] = Rendition(encode(image), image.width, image.height)
    return ProcessedPhoto(content_type, renditions)


def decode(data: bytes, max_pixels: int, max_decode_bytes: int) -> tuple:
    """(the first frame decoded to its last byte, its EXIF orientation); 422 otherwise."""
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
        # From the header, before a single pixel is decoded: a small file can claim gigapixels (CWE-409).
        if image.width * image.height > max_pixels:
            raise too_many_pixels(max_pixels)
        if image.format in JPEG_FORMATS:
            # libjpeg decodes at 1/2, 1/4 or 1/8 scale while staying at least 512 px: a fraction of the work.
            image.draft("RGB", (model.LARGEST, model.LARGEST))
        # Also from the header: 16-bit channels under the pixel cap still decode into hundreds of MB (CWE-409).
        if decoded_bytes(image) > max_decode_bytes:
            raise too_many_bytes(max_decode_bytes)
        image.load()  # the whole image: a truncated file or a PNG header before HTML fails here (CWE-434)
        return image, image.getexif().get(ORIENTATION, 1)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_many_pixels(max_pixels) from None
    except ApiError:
        raise
    except Exception:  # Pillow's decoders fail on malformed input with many exception types, never a 500
        raise field_error("file", NOT_AN_IMAGE) from None


def decoded_bytes(image: Image.Image) -> int:
    """Width × height × bytes per pixel, before decoding: the larger of what the header's samples take (16-bit
    RGBA: 8) and what Pillow holds a pixel of its mode in (RGB: 4, padded)."""
    return image.width * image.height * max(header_bytes_per_pixel(image), held_bytes_per_pixel(image.mode))


def header_bytes_per_pixel(image: Image.Image) -> int:
    """From the decoder's raw mode, as the header declares it: "RGBA;16B" is 4 samples of 16 bits."""
    raw_mode = image.mode
    if image.tile:  # PNG's args are the raw mode; JPEG's and GIF's a tuple starting with it
        args = image.tile[0].args
        first = args[0] if isinstance(args, tuple) and args else args
        if isinstance(first, str):
            raw_mode = first
    base, _, layout = raw_mode.partition(";")
    try:
        bands = Image.getmodebands(base)
    except (KeyError, ValueError):
        bands = len(image.getbands())
    return bands * (2 if layout.startswith("16") else 4 if layout.startswith("32") else 1)


def held_bytes_per_pixel(mode: str) -> int:
    return 1 if mode in ONE_BYTE_MODES else 2 if mode.startswith("I;16") else 4


def too_many_pixels(max_pixels: int) -> ApiError:
    return field_error("file", f"must be at most {max_pixels} pixels (width × height)")


def too_many_bytes(max_decode_bytes: int) -> ApiError:
    return field_error(
        "file", f"must decode to at most {max_decode_bytes // (1024 * 1024)} MiB (width × height × bytes per pixel)"
    )


def shrink(image: Image.Image) -> Image.Image:
    """An image much larger than the largest size served, box-reduced by a whole factor to at least twice that
    (what Image.thumbnail's reducing_gap does), a strip of rows at a time: no second full-size copy is ever made
    (Pillow's own reduce of RGBA converts the whole image first). Smaller images are returned as they are."""
    factor = max(image.size) // (2 * model.LARGEST)
    if factor < 2:
        return image
    work_mode = reducible_mode(image)
    reduced_size = (-(-image.width // factor), -(-image.height // factor))
    out = Image.new(PREMULTIPLIED.get(work_mode, work_mode), reduced_size)
    rows = factor * STRIP_ROWS
    for top in range(0, image.height, rows):
        strip = image.crop((0, top, image.width, min(top + rows, image.height)))
        strip = reducible(strip, work_mode)
        out.paste(strip.reduce(factor), (0, top // factor))
    out = out.convert(work_mode) if work_mode in PREMULTIPLIED else out
    out.info = dict(image.info)  # the colour profile, for to_srgb
    return out


def reducible_mode(image: Image.Image) -> str:
    """The mode the strips are reduced in: the image's own where Pillow can reduce it, else what flatten would
    make of it (palette and 1-bit to RGB(A) or L, 16-bit grey to L)."""
    if image.mode in ("P", "PA"):
        return "RGBA" if image.has_transparency_data else "RGB"
    if image.mode == "1":
        return "L"
    if image.mode.startswith("I") or image.mode == "F":
        return "L"
    return image.mode


def reducible(strip: Image.Image, work_mode: str) -> Image.Image:
    if strip.mode.startswith("I") or strip.mode == "F":
        strip = to_eight_bits(strip)
    if strip.mode != work_mode:
        strip = strip.convert(work_mode)
    # Alpha is averaged premultiplied, as Pillow's resize does, or see-through pixels' colours would bleed.
    return strip.convert(PREMULTIPLIED[work_mode]) if work_mode in PREMULTIPLIED else strip


def to_eight_bits(image: Image.Image) -> Image.Image:
    return image.convert("I").point(lambda value: value / 256).convert("L")  # 16-bit grey to 8


def upright(image: Image.Image, orientation: int) -> Image.Image:
    """The image turned as its EXIF orientation (read before shrinking) says."""
    method = TRANSPOSITIONS.get(orientation)
    return image.transpose(method) if method is not None else image


def process_and_trim(data: bytes, max_pixels: int, max_decode_bytes: int) -> ProcessedPhoto:
    """process(), then the freed image memory handed back to the system (docs/using/photos.md has the figures)."""
    try:
        return process(data, max_pixels, max_decode_bytes)
    finally:
        give_back_memory()


def _malloc_trim():
    """glibc's malloc_trim, or None elsewhere (musl, macOS): there the memory stays with the process."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


MALLOC_TRIM = _malloc_trim()


def give_back_memory() -> None:
    """Return the free pages of the C heap to the system: without it a decode's hundred MB stays resident."""
    if MALLOC_TRIM is not None:
        MALLOC_TRIM(0)


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
        image = to_eight_bits(image)
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

    def __init__(self, database, max_bytes: int, max_pixels: int, executor: Executor, max_decode_bytes: int):
        self.collection = database[model.COLLECTION]
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.max_decode_bytes = max_decode_bytes
        self.executor = executor
        # One decode at a time per process: each may hold up to max_decode_bytes, so two would hold twice that;
        # and the other cores are left to the IOLoop and bcrypt (CWE-400).
        self._decoding = asyncio.Lock()

    async def prepare(self, data: bytes) -> ProcessedPhoto:
        """An upload processed for storing; 413 when too large, 422 when not a whole accepted image."""
        if len(data) > self.max_bytes:
            raise ApiError(413, f"Photo too large: at most {self.max_bytes} bytes")
        return await self._process(data)

    async def _process(self, data: bytes) -> ProcessedPhoto:
        async with self._decoding:
            return await asyncio.get_running_loop().run_in_executor(
                self.executor, process_and_trim, data, self.max_pixels, self.max_decode_bytes
            )

    async def save(self, user_id: ObjectId, photo: ProcessedPhoto) -> str:
        """Replace the user's photo, every size at once; returns its new version (a new one on every upload)."""
        # The version is the public URL's only secret: 128 random bits, never derived from the id (CWE-330).
        version = secrets.token_hex(16)
        await self.collection.replace_one(
            {"_id": user_id},
            {"_id": user_id, "version": version, "updatedAt": utcnow(), **stored_fields(photo)},
            upsert=True,
        )
        return version

    async def current(self, user_id: ObjectId, size: int) -> dict | None:
        """The user's photo at this size as served ({data, contentType, etag}), or None."""
        doc = await self.collection.find_one(
            {"_id": user_id}, {"version": 1, "contentType": 1, f"renditions.{size}": 1}
        )
        if doc is not None and "renditions" not in doc:
            doc = await self._redraw_stored_upload(user_id)
        return served(doc, size) if doc else None

    async def _redraw_stored_upload(self, user_id: ObjectId) -> dict | None:
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
        await self.collection.update_one(
            {"_id": user_id, "version": doc["version"]}, {"$set": fields, "$unset": {"data": "", "size": ""}}
        )
        return {"_id": user_id, "version": doc["version"], **fields}

    async def published(self, user_id: ObjectId, version: str, size: int) -> dict | None:
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
    return {
        "contentType": photo.content_type,
        "renditions": {
            str(size): {"data": Binary(r.data), "width": r.width, "height": r.height}
            for size, r in photo.renditions.items()
        },
    }


def served(doc: dict, size: int) -> dict:
    return {
        "data": bytes(doc["renditions"][str(size)]["data"]),
        "contentType": doc["contentType"],
        "version": doc["version"],
        "etag": model.etag(doc["version"], size),
    }
