"""Profile photos through HTTP: the upload, the public versioned URL and its caching, sizes, deleteProfilePic.
What a photo's pixels and metadata become is tests/users/test_photos_processing.py."""

import re

import pytest
from bson import Binary, ObjectId
from PIL import Image

from models.common import utcnow
from tests.helpers import Store, assert_error, error_fields
from tests.users_fixtures import (
    BLUE,
    PNG_SIGNATURE,
    RED,
    camera_jpeg,
    encoded,
    jpeg_markers,
    make_admin,
    multipart,
    opened,
    photo_form,
    png,
    sign_up,
    stored,
)

pytestmark = pytest.mark.gen_test

PUBLIC = "public, max-age=31536000, immutable"
CURRENT = "private, no-cache"


async def upload(api, account, data=None, **kwargs):
    response = await api.put(f"/users/{account.id}", token=account.token, **photo_form(data or png(), **kwargs))
    assert response.code == 200, response
    return response.json


async def stored_photo(services, user_id: str):
    store = Store(services.database)
    return await store.photos.find_one({"_id": ObjectId(user_id)})


async def test_the_photo_url_works_with_no_token_and_is_cached_for_good(api, services, config):
    ada = await sign_up(api)
    user = await upload(api, ada, png(3, 2), name="Ada King")
    assert user["name"] == "Ada King"
    url = user["profilePhotoUrl"]
    # 128 random bits as 32 hex characters.
    # Absolute under APP_URL: a web app puts it in <img src> on its own origin as it is.
    version = re.fullmatch(rf"{re.escape(config.app_url)}/users/{ada.id}/photo\?v=([0-9a-f]{{32}})", url).group(1)
    photo = await stored_photo(services, ada.id)
    assert photo["version"] == version and photo["contentType"] == "image/jpeg"  # an opaque PNG becomes a JPEG
    assert (await stored(services, ada.id))["photoVersion"] == version
    served = await api.get(url)  # an <img src>: no token at all
    assert served.code == 200 and served.body == bytes(photo["renditions"]["512"]["data"])
    assert served.headers["Content-Type"] == photo["contentType"]
    assert served.headers["Cache-Control"] == PUBLIC
    assert served.headers["ETag"] == f'"{version}-512"'
    assert served.headers["Cross-Origin-Resource-Policy"] == "cross-origin"  # an <img> of any origin loads it
    assert opened(served.body).size == (3, 2)
    # Credentials, valid or not, change nothing on the public URL.
    assert (await api.get(url, token="not-a-token")).body == served.body
    assert (await api.get(f"/users/{ada.id}", token=ada.token)).json["profilePhotoUrl"] == url


async def test_a_wrong_or_outdated_version_is_404(api, services):
    ada = await sign_up(api)
    bob = await sign_up(api, email="bob@example.com", name="Bob")
    old_url = (await upload(api, ada))["profilePhotoUrl"]
    new_url = (await upload(api, ada, png(2, 2)))["profilePhotoUrl"]
    assert new_url != old_url
    bob_url = (await upload(api, bob))["profilePhotoUrl"]
    version = new_url.rsplit("=", 1)[1]
    for wrong in (
        old_url,
        f"/users/{ada.id}/photo?v=",
        f"/users/{ada.id}/photo?v={version[:-1]}",
        f"/users/{ada.id}/photo?v={version}0",
        f"/users/{ada.id}/photo?v={version.upper()}",
        f"/users/{ada.id}/photo?v=%C3%A9",
        bob_url.replace(bob.id, ada.id),
        f"/users/{bob.id}/photo?v={version}",
        "/users/0123456789abcdef01234567/photo?v=" + version,
        f"/users/junk/photo?v={version}",
    ):
        response = await api.get(wrong)
        assert_error(response, 404)
        assert response.headers["Cache-Control"] == "no-store", wrong
    assert (await api.get(new_url)).code == 200 and (await api.get(bob_url)).code == 200


async def test_without_a_version_the_current_photo_for_self_or_admin(api, services):
    ada = await sign_up(api)
    bob = await sign_up(api, email="bob@example.com", name="Bob")
    admin = await make_admin(api, services)
    path = f"/users/{ada.id}/photo"
    assert_error(await api.get(path), 401)
    assert_error(await api.get(path, token=ada.token), 404)  # no photo yet
    url = (await upload(api, ada))["profilePhotoUrl"]
    public = await api.get(url)
    for caller in (ada, admin):
        current = await api.get(path, token=caller.token)
        assert current.code == 200 and current.body == public.body
        assert current.headers["Cache-Control"] == CURRENT and current.headers["ETag"] == public.headers["ETag"]
    # Someone else needs the URL (which they see wherever they may see the user), not just the id (CWE-639).
    assert_error(await api.get(path, token=bob.token), 403)
    assert_error(await api.get(path, token="forged"), 401)
    assert_error(await api.get("/users/0123456789abcdef01234567/photo", token=bob.token), 403)
    assert_error(await api.get("/users/0123456789abcdef01234567/photo", token=admin.token), 404)


async def test_if_none_match_gives_304_and_a_new_photo_a_new_etag(api):
    ada = await sign_up(api)
    url = (await upload(api, ada))["profilePhotoUrl"]
    etag = (await api.get(url)).headers["ETag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        cached = await api.get(url, headers={"If-None-Match": header})
        assert cached.code == 304 and cached.body == b"", header
        assert cached.headers["ETag"] == etag and cached.headers["Cache-Control"] == PUBLIC
    assert (await api.get(url, headers={"If-None-Match": '"stale"'})).code == 200
    new_url = (await upload(api, ada, png(2, 2)))["profilePhotoUrl"]
    fresh = await api.get(new_url, headers={"If-None-Match": etag})
    assert fresh.code == 200 and fresh.headers["ETag"] != etag
    # The current photo revalidates by the same ETag: a new upload is a 200 again.
    current = await api.get(f"/users/{ada.id}/photo", token=ada.token, headers={"If-None-Match": etag})
    assert current.code == 200 and current.headers["ETag"] == fresh.headers["ETag"]
    # Re-uploading the very same bytes is still a new version.
    assert (await upload(api, ada, png(2, 2)))["profilePhotoUrl"] != new_url


async def test_each_size_is_its_own_cacheable_image(api, services):
    ada = await sign_up(api)
    image = Image.new("RGB", (1000, 800), BLUE)
    image.paste(RED, (0, 0, 500, 400))
    url = (await upload(api, ada, encoded(image, "PNG")))["profilePhotoUrl"]
    default = await api.get(url)
    etags = {default.headers["ETag"]}
    for size in (64, 128, 256, 512):
        served = await api.get(f"{url}&size={size}")
        assert served.code == 200 and served.headers["Cache-Control"] == PUBLIC
        assert served.headers["Content-Type"] == "image/jpeg"
        picture = opened(served.body)
        assert picture.width == size and abs(picture.height - size * 0.8) <= 1, size  # the aspect ratio kept
        assert picture.getpixel((size // 8, size // 8))[0] > 200  # the red quadrant still top left
        etags.add(served.headers["ETag"])
        assert (await api.get(f"{url}&size={size}", headers={"If-None-Match": served.headers["ETag"]})).code == 304
        assert (await api.get(f"/users/{ada.id}/photo?size={size}", token=ada.token)).body == served.body
    assert len(etags) == 4 and default.body == (await api.get(f"{url}&size=512")).body
    assert error_fields(await api.get(f"{url}&size=100")) == {"size": "must be one of: 64, 128, 256, 512"}
    for bad in ("0", "1024", "-64", "big", "", "64&size=128"):
        assert set(error_fields(await api.get(f"{url}&size={bad}"))) == {"size"}, bad
    assert set(error_fields(await api.get(f"/users/{ada.id}/photo?size=big", token=ada.token))) == {"size"}
    photo = await stored_photo(services, ada.id)
    assert sorted(int(size) for size in photo["renditions"]) == [64, 128, 256, 512]
    assert all(max(r["width"], r["height"]) == int(size) for size, r in photo["renditions"].items())


async def test_a_small_photo_is_never_enlarged(api):
    ada = await sign_up(api)
    url = (await upload(api, ada, encoded(Image.new("RGB", (40, 30), RED), "WEBP")))["profilePhotoUrl"]
    for size in (64, 128, 256, 512):
        assert opened((await api.get(f"{url}&size={size}")).body).size == (40, 30)


async def test_form_fields_follow_the_json_rules(api, services):
    ada = await sign_up(api, username="ada")
    path = f"/users/{ada.id}"
    response = await api.patch(path, token=ada.token, **multipart({"lastName": " Byron ", "phone": "0800 123 456"}))
    assert response.code == 200, response
    assert (response.json["name"], response.json["phone"], response.json["profilePhotoUrl"]) == (
        "Ada Byron",
        "0800 123 456",
        None,
    )
    # An empty part stands for null: a form cannot send one.
    cleared = await api.patch(path, token=ada.token, **multipart({"username": "", "phone": ""}))
    assert cleared.json["username"] is None and "username" not in await stored(services, ada.id)
    assert error_fields(await api.patch(path, token=ada.token, **multipart({"isAdmin": "1"}))) == {
        "isAdmin": "is not allowed"
    }
    assert error_fields(await api.patch(path, token=ada.token, **multipart({"email": "bad"}))) == {
        "email": "must be a valid email address"
    }
    assert_error(await api.patch(path, token=ada.token, **multipart({"role": "admin"})), 403)
    assert error_fields(await api.patch(path, token=ada.token, **multipart({}))) == {
        "body": "must change at least one field"
    }
    photo = multipart({}, {"photo": ("a.png", png(), "image/png")})
    assert error_fields(await api.patch(path, token=ada.token, **photo)) == {"photo": "is not allowed"}


async def test_malformed_multipart_is_400(api):
    ada = await sign_up(api)
    path = f"/users/{ada.id}"
    for body, content_type in (
        (b"garbage", "multipart/form-data; boundary=xyz"),
        (b"--xyz\r\nno headers end--xyz--\r\n", "multipart/form-data; boundary=xyz"),
        (b"--xyz--\r\n", "multipart/form-data"),
        (
            b'--xyz\r\nContent-Disposition: form-data; name="name"\r\n\r\n\xff\xfe\r\n--xyz--\r\n',
            "multipart/form-data; boundary=xyz",
        ),
    ):
        response = await api.put(path, token=ada.token, body=body, headers={"Content-Type": content_type})
        assert_error(response, 400, "Malformed multipart body")


async def test_photo_404s(api, services):
    ada = await sign_up(api)
    admin = await make_admin(api, services)
    assert_error(await api.get(f"/users/{ada.id}/photo", token=ada.token), 404)
    assert_error(await api.get("/users/not-an-id/photo", token=ada.token), 404)
    assert_error(await api.get(f"/users/{ada.id}/photo?size=big", token=admin.token), 422)


async def test_delete_profile_pic(api, services, store):
    ada = await sign_up(api)
    bob = await sign_up(api, email="bob@example.com", name="Bob")
    admin = await make_admin(api, services)
    url = (await upload(api, ada))["profilePhotoUrl"]
    assert_error(await api.put(f"/users/deleteProfilePic/{ada.id}", token=bob.token), 403)
    assert (await api.get(url, token=ada.token)).code == 200
    response = await api.put(f"/users/deleteProfilePic/{ada.id}", token=ada.token)
    assert response.code == 200 and response.json["profilePhotoUrl"] is None and response.json["id"] == ada.id
    assert_error(await api.get(url, token=ada.token), 404)
    assert await store.photos.count_documents({}) == 0
    assert "photoVersion" not in await stored(services, ada.id)
    # No photo left: still 200. Admins may do it for anyone; unknown or junk ids are 404.
    assert (await api.put(f"/users/deleteProfilePic/{ada.id}", token=ada.token, json={})).code == 200
    await upload(api, bob)
    by_admin = await api.put(f"/users/deleteProfilePic/{bob.id}", token=admin.token)
    assert by_admin.code == 200 and by_admin.json["profilePhotoUrl"] is None
    assert_error(await api.put("/users/deleteProfilePic/0123456789abcdef01234567", token=admin.token), 404)
    assert_error(await api.put("/users/deleteProfilePic/junk", token=admin.token), 404)
    # It takes no body: whatever is sent (the web app sends an empty multipart form) is ignored.
    assert (await api.put(f"/users/deleteProfilePic/{ada.id}", token=ada.token, json={"x": 1})).code == 200


class TestSizeLimits:
    @pytest.fixture
    def settings_env(self):
        return {"MAX_PHOTO_BYTES": "4096", "MAX_BODY_BYTES": "2048"}

    @pytest.mark.gen_test
    async def test_photo_over_max_photo_bytes_is_413_and_json_keeps_its_own_limit(self, api, services):
        ada = await sign_up(api)
        path = f"/users/{ada.id}"
        just_fits = png() + b"\x00" * (4096 - len(png()))
        assert (await api.put(path, token=ada.token, **photo_form(just_fits))).code == 200
        one_over = just_fits + b"\x00"
        assert_error(await api.put(path, token=ada.token, **photo_form(one_over)), 413)
        # Far over: the body itself is over MAX_PHOTO_BYTES plus the form allowance.
        assert_error(await api.put(path, token=ada.token, **photo_form(png() + b"\x00" * 80_000)), 413)
        # A multipart body may exceed MAX_BODY_BYTES; a JSON one may not.
        assert_error(await api.put(path, token=ada.token, json={"name": "x" * 3000}), 413)
        served = await api.get(f"/users/{ada.id}/photo", token=ada.token)
        assert served.code == 200 and opened(served.body).size == (1, 1)  # redrawn: the padding is gone


async def store_as_before(services, account, data: bytes, version: str) -> None:
    """A photo as the service stored it before uploads were redrawn: the upload's bytes, a 64-bit version."""
    store = Store(services.database)
    await store.photos.insert_one(
        {
            "_id": ObjectId(account.id),
            "data": Binary(data),
            "contentType": "image/jpeg",
            "size": len(data),
            "version": version,
            "updatedAt": utcnow(),
        }
    )
    await store.users.update_one({"_id": ObjectId(account.id)}, {"$set": {"photoVersion": version}})


@pytest.mark.gen_test(timeout=30)
async def test_a_photo_stored_before_redrawing_is_redrawn_on_first_fetch(api, services, config):
    ada = await sign_up(api)
    await store_as_before(services, ada, camera_jpeg(800, 600), "0123456789abcdef")
    url = (await api.get(f"/users/{ada.id}", token=ada.token)).json["profilePhotoUrl"]
    assert url == f"{config.app_url}/users/{ada.id}/photo?v=0123456789abcdef"
    served = await api.get(f"{url}&size=256")
    assert served.code == 200 and served.headers["Cache-Control"] == PUBLIC
    picture = opened(served.body)
    assert (
        picture.size == (192, 256)
        and len(picture.getexif()) == 0
        and set(jpeg_markers(served.body)) <= {0xE0, 0xDB, 0xC4, 0xC0}
    )
    photo = await stored_photo(services, ada.id)
    assert "data" not in photo and sorted(photo["renditions"]) == ["128", "256", "512", "64"]
    assert photo["version"] == "0123456789abcdef" and (await api.get(url)).code == 200
    bob = await sign_up(api, email="bob@example.com", name="Bob")
    await store_as_before(services, bob, PNG_SIGNATURE + b"<html><script>alert(1)</script>", "fedcba9876543210")
    assert_error(await api.get(f"/users/{bob.id}/photo?v=fedcba9876543210"), 404)
    assert await stored_photo(services, bob.id) is None  # never served, and gone
