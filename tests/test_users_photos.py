"""Profile photos: multipart upload on update, serving with ETag / 304, and deleteProfilePic."""
import re

import pytest
from bson import ObjectId

from tests.helpers import assert_error, error_fields, sign_up
from tests.users_fixtures import make_admin, multipart, photo_form, png, stored

pytestmark = pytest.mark.gen_test

CACHE = "private, max-age=31536000, immutable"


async def upload(api, account, data=None, **kwargs):
    response = await api.put(f"/users/{account.id}", token=account.token, **photo_form(data or png(), **kwargs))
    assert response.code == 200, response
    return response.json


async def test_upload_a_real_png_and_serve_it(api, services):
    ada = await sign_up(api)
    image = png(3, 2)
    user = await upload(api, ada, image, name="Ada King")
    assert user["name"] == "Ada King"
    url = user["profilePhotoUrl"]
    assert re.fullmatch(rf"/users/{ada.id}/photo\?v=[0-9a-f]+", url), url
    stored_photo = await services.photos.collection.find_one({"_id": ObjectId(ada.id)})
    assert stored_photo["contentType"] == "image/png" and stored_photo["size"] == len(image)
    bob = await sign_up(api, email="bob@example.com", name="Bob")
    served = await api.get(url, token=bob.token)  # any signed-in user may see it
    assert served.code == 200 and served.body == image
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["Cache-Control"] == CACHE
    assert re.fullmatch(r'"[0-9a-f]+"', served.headers["ETag"])
    assert (await api.get(f"/users/{ada.id}", token=ada.token)).json["profilePhotoUrl"] == url
    assert_error(await api.get(url), 401)


async def test_if_none_match_gives_304_and_a_new_photo_a_new_url(api):
    ada = await sign_up(api)
    url = (await upload(api, ada))["profilePhotoUrl"]
    etag = (await api.get(url, token=ada.token)).headers["ETag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        cached = await api.get(url, token=ada.token, headers={"If-None-Match": header})
        assert cached.code == 304 and cached.body == b"", header
        assert cached.headers["ETag"] == etag
    assert (await api.get(url, token=ada.token, headers={"If-None-Match": '"stale"'})).code == 200
    second = png(2, 2)
    new_url = (await upload(api, ada, second))["profilePhotoUrl"]
    assert new_url != url
    fresh = await api.get(new_url, token=ada.token, headers={"If-None-Match": etag})
    assert fresh.code == 200 and fresh.body == second and fresh.headers["ETag"] != etag
    # Re-uploading the very same bytes is still a new version.
    assert (await upload(api, ada, second))["profilePhotoUrl"] != new_url


async def test_type_is_judged_by_content(api, services):
    ada = await sign_up(api)
    samples = {
        "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20,
        "image/gif": b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
        "image/webp": b"RIFF\x1a\x00\x00\x00WEBPVP8 " + b"\x00" * 14,
    }
    for content_type, data in samples.items():
        # Declared as something else, named wrongly: only the bytes count.
        url = (await upload(api, ada, data, filename="x.txt", content_type="text/plain"))["profilePhotoUrl"]
        served = await api.get(url, token=ada.token)
        assert served.headers["Content-Type"] == content_type and served.body == data
    before = await stored(services, ada.id)
    for fake in (b"this is not a picture", b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"",
                 b"\x89PNX\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WAVEfmt "):
        response = await api.put(f"/users/{ada.id}", token=ada.token, **photo_form(fake, name="Changed"))
        assert error_fields(response) == {"file": "must be a JPEG, PNG, WebP or GIF image"}, fake
    after = await stored(services, ada.id)
    assert after["photoVersion"] == before["photoVersion"] and after["name"] == before["name"]


async def test_form_fields_follow_the_json_rules(api, services):
    ada = await sign_up(api, username="ada")
    path = f"/users/{ada.id}"
    response = await api.patch(path, token=ada.token, **multipart({"lastName": " Byron ", "phone": "0800 123 456"}))
    assert response.code == 200, response
    assert (response.json["name"], response.json["phone"], response.json["profilePhotoUrl"]) == \
        ("Ada Byron", "0800 123 456", None)
    # An empty part stands for null: a form cannot send one.
    cleared = await api.patch(path, token=ada.token, **multipart({"username": "", "phone": ""}))
    assert cleared.json["username"] is None and "username" not in await stored(services, ada.id)
    assert error_fields(await api.patch(path, token=ada.token, **multipart({"isAdmin": "1"}))) == {
        "isAdmin": "is not allowed"}
    assert error_fields(await api.patch(path, token=ada.token, **multipart({"email": "bad"}))) == {
        "email": "must be a valid email address"}
    assert_error(await api.patch(path, token=ada.token, **multipart({"role": "admin"})), 403)
    assert error_fields(await api.patch(path, token=ada.token, **multipart({}))) == {
        "body": "must change at least one field"}
    photo = multipart({}, {"photo": ("a.png", png(), "image/png")})
    assert error_fields(await api.patch(path, token=ada.token, **photo)) == {"photo": "is not allowed"}


async def test_malformed_multipart_is_400(api):
    ada = await sign_up(api)
    path = f"/users/{ada.id}"
    for body, content_type in ((b"garbage", "multipart/form-data; boundary=xyz"),
                               (b"--xyz\r\nno headers end--xyz--\r\n", "multipart/form-data; boundary=xyz"),
                               (b"--xyz--\r\n", "multipart/form-data"),
                               (b'--xyz\r\nContent-Disposition: form-data; name="name"\r\n\r\n\xff\xfe\r\n--xyz--\r\n',
                                "multipart/form-data; boundary=xyz")):
        response = await api.put(path, token=ada.token, body=body, headers={"Content-Type": content_type})
        assert_error(response, 400, "Malformed multipart body")


async def test_photo_404s(api, services):
    ada = await sign_up(api)
    admin = await make_admin(api, services)
    assert_error(await api.get(f"/users/{ada.id}/photo", token=ada.token), 404)
    assert_error(await api.get("/users/not-an-id/photo", token=ada.token), 404)
    assert_error(await api.get(f"/users/{ada.id}/photo?size=big", token=admin.token), 422)


async def test_delete_profile_pic(api, services):
    ada = await sign_up(api)
    bob = await sign_up(api, email="bob@example.com", name="Bob")
    admin = await make_admin(api, services)
    url = (await upload(api, ada))["profilePhotoUrl"]
    assert_error(await api.put(f"/users/deleteProfilePic/{ada.id}", token=bob.token), 403)
    assert (await api.get(url, token=ada.token)).code == 200
    response = await api.put(f"/users/deleteProfilePic/{ada.id}", token=ada.token)
    assert response.code == 200 and response.json["profilePhotoUrl"] is None and response.json["id"] == ada.id
    assert_error(await api.get(url, token=ada.token), 404)
    assert await services.photos.collection.count_documents({}) == 0
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
        assert served.body == just_fits
