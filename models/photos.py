"""Profile photos, one document per user keyed by the user's id, every served size kept in MongoDB.

An upload is at most MAX_PHOTO_BYTES (5 MiB by default) and what is stored is far smaller (at most
512x512 and its smaller sizes, re-encoded), well under MongoDB's 16 MiB document limit, so one
document holds them all and GridFS is not needed. Every look-up is by _id, so the collection needs
no index of its own (and has no entry in models.indexes.INDEXES).

The document: {_id: user id, version, contentType, updatedAt,
               renditions: {"64"|"128"|"256"|"512": {data, width, height}}}.
"""

COLLECTION = "photos"

# The sizes GET /users/:id/photo?size= serves: the longest side at most this many pixels.
SIZES = (64, 128, 256, 512)
LARGEST = max(SIZES)

# The URL carries the version, so a new photo is a new URL and the old bytes may be cached for good,
# by browsers and shared caches alike: the version is the only secret and the URL holds it.
PUBLIC_CACHE = "public, max-age=31536000, immutable"
# Without a version the URL answers whichever photo is current, to a signed-in caller only.
CURRENT_CACHE = "private, no-cache"


def etag(version: str, size: int) -> str:
    """The entity tag of one size of one version of a photo, quoted."""
    return f'"{version}-{size}"'
