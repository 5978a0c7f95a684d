"""Profile photos, one document per user keyed by the user's id, bytes kept in MongoDB.

A photo is at most MAX_PHOTO_BYTES (5 MiB by default), well under MongoDB's 16 MiB document
limit, so one document holds it whole and GridFS is not needed. Every look-up is by _id, so
the collection needs no index of its own (and has no entry in models.database.INDEXES).
"""
COLLECTION = "photos"

# The URL carries the version, so a new photo is a new URL and the old bytes may be cached for good.
CACHE_CONTROL = "private, max-age=31536000, immutable"


def etag(doc: dict) -> str:
    """The photo's entity tag: its version, quoted."""
    return f'"{doc["version"]}"'
