"""Deleting a user (POST or DELETE /users/:id): who may, and the journalled cascade."""

import asyncio

import pytest
from bson import ObjectId
from pymongo.errors import NotPrimaryError

from models.common import utcnow
from services import container
from tests.helpers import PASSWORD, Store, assert_error, error_fields, sign_up
from tests.organisations_fixtures import invite, join
from tests.users_fixtures import make_admin, photo_form, png, stored

pytestmark = pytest.mark.gen_test


async def leave_traces(api, services, account):
    """Give an account everything deletion must remove: a photo, a second session, a reset token, an
    organisation shared with someone else, an invitation to them and one from them. Returns (the other
    member's account, the organisation id)."""
    store = Store(services.database)
    account.photo_url = (await api.put(f"/users/{account.id}", token=account.token, **photo_form(png()))).json[
        "profilePhotoUrl"
    ]
    assert (await api.get(account.photo_url)).code == 200
    await api.login(account.user["email"], PASSWORD)
    assert (await api.post("/auth/forgot-password", json={"email": account.user["email"]})).code == 204
    other = await sign_up(api, email="other@example.com", name="Other Member")
    invitee = await sign_up(api, email="invitee@example.com", name="Ivy Invitee")
    org = await store.organisations.find_one({"createdBy": ObjectId(account.id)})
    other_org = await store.organisations.find_one({"createdBy": ObjectId(other.id)})
    await join(api, account.token, str(org["_id"]), other.id, other.token)
    assert (await invite(api, account.token, str(org["_id"]), invitee.id)).code == 200
    assert (await invite(api, other.token, str(other_org["_id"]), account.id)).code == 200
    for sent in ({"userId": ObjectId(account.id)}, {"invitedBy": ObjectId(account.id)}):
        assert await store.invitations.count_documents(sent) == 1
    return other, org["_id"]


async def assert_erased(api, services, account, other, org_id):
    """Nothing of the account is left; the organisation it created stays with its other member."""
    store = Store(services.database)
    user_id = ObjectId(account.id)
    assert await stored(services, account.id) is None
    assert await store.sessions.count_documents({"userId": user_id}) == 0
    assert await store.tokens.count_documents({"userId": user_id}) == 0
    assert await store.photos.count_documents({"_id": user_id}) == 0
    assert await store.memberships.count_documents({"userId": user_id}) == 0
    # Invitations to them, and those they sent, which would show a deleted account as the inviter.
    assert await store.invitations.count_documents({"userId": user_id}) == 0
    assert await store.invitations.count_documents({"invitedBy": user_id}) == 0
    assert await store.deletions.count_documents({}) == 0
    assert await store.organisations.count_documents({"_id": org_id}) == 1
    assert await store.memberships.count_documents({"orgId": org_id, "userId": ObjectId(other.id)}) == 1
    assert_error(await api.get(account.photo_url), 404)  # the public URL too


async def test_self_delete_with_password_cascades(api, services):
    ada = await sign_up(api)
    other, org_id = await leave_traces(api, services, ada)
    response = await api.post(f"/users/{ada.id}", token=ada.token, json={"password": PASSWORD})
    assert response.code == 204 and response.body == b""
    await assert_erased(api, services, ada, other, org_id)
    assert_error(await api.get("/users/user", token=ada.token), 401)
    assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": ada.refresh}), 401)
    assert_error(await api.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD}), 401)
    # The address is free again.
    await sign_up(api)


async def test_self_delete_needs_the_right_password_by_post_and_delete(api, services):
    ada = await sign_up(api)
    for method in ("POST", "DELETE"):
        assert error_fields(await api.request(method, f"/users/{ada.id}", token=ada.token, body=b"")) == {
            "password": "is required"
        }
        assert_error(
            await api.request(method, f"/users/{ada.id}", token=ada.token, json={"password": "wrong one"}),
            401,
            "Authentication failed",
        )
    assert await stored(services, ada.id) is not None
    response = await api.delete(f"/users/{ada.id}", token=ada.token, json={"password": PASSWORD})
    assert response.code == 204
    assert await stored(services, ada.id) is None


async def test_admin_deletes_others_without_a_password(api, services):
    ada = await sign_up(api)
    admin = await make_admin(api, services)
    other, org_id = await leave_traces(api, services, ada)
    response = await api.delete(f"/users/{ada.id}", token=admin.token)
    assert response.code == 204
    await assert_erased(api, services, ada, other, org_id)
    assert_error(await api.get("/users/user", token=ada.token), 401)
    assert_error(await api.delete(f"/users/{ada.id}", token=admin.token), 404)
    assert_error(await api.post("/users/0123456789abcdef01234567", token=admin.token), 404)
    assert_error(await api.post("/users/junk", token=admin.token), 404)
    assert (await api.get("/users/user", token=admin.token)).code == 200


async def test_others_cannot_delete(api, services):
    ada = await sign_up(api)
    bob = await sign_up(api, email="bob@example.com", name="Bob")
    assert_error(await api.post(f"/users/{bob.id}", token=ada.token, json={"password": PASSWORD}), 403)
    assert_error(await api.delete(f"/users/{bob.id}", token=ada.token), 403)
    assert_error(await api.delete(f"/users/{bob.id}"), 401)
    assert await stored(services, bob.id) is not None


async def test_an_interrupted_deletion_is_finished_by_the_replay(api, services, store):
    ada = await sign_up(api)
    other, org_id = await leave_traces(api, services, ada)
    # As if a process wrote the journal entry and died before (or during) the cascade.
    await store.deletions.insert_one({"_id": ObjectId(ada.id), "at": utcnow()})
    assert await services.users.replay_deletions() == 1
    await assert_erased(api, services, ada, other, org_id)
    assert_error(await api.get("/users/user", token=ada.token), 401)
    # Done twice, or with nothing pending, it changes nothing.
    await store.deletions.insert_one({"_id": ObjectId(ada.id), "at": utcnow()})
    assert await services.users.replay_deletions() == 1
    assert await services.users.replay_deletions() == 0
    assert (await api.get("/users/user", token=other.token)).code == 200


async def test_a_replay_after_a_crash_midway_finishes_the_rest(api, services, store):
    ada = await sign_up(api)
    other, org_id = await leave_traces(api, services, ada)
    # The process died after deleting the user document and sessions, before the photo and memberships.
    await store.deletions.insert_one({"_id": ObjectId(ada.id), "at": utcnow()})
    await store.users.delete_one({"_id": ObjectId(ada.id)})
    await services.sessions.end_all(ObjectId(ada.id))
    assert_error(await api.get("/users/user", token=ada.token), 401)  # already unusable
    await services.users.replay_deletions()
    await assert_erased(api, services, ada, other, org_id)


class Outage:
    """One method of a service's own collection fails as a replica set's primary stepping down makes it fail
    (pymongo's NotPrimaryError with the server's code and label, after its own retry), until heal()."""

    def __init__(self, monkeypatch, collection, method: str):
        real = getattr(collection, method)
        self.calls, self.healed = 0, False
        self.error = NotPrimaryError(
            "operation was interrupted because of a replica set state change",
            {
                "ok": 0.0,
                "errmsg": "operation was interrupted because of a replica set state change",
                "code": 11602,
                "codeName": "InterruptedDueToReplStateChange",
                "errorLabels": ["RetryableWriteError"],
            },
        )

        async def failing(*args, **kwargs):
            if self.healed:
                return await real(*args, **kwargs)
            self.calls += 1
            raise self.error

        monkeypatch.setattr(collection, method, failing)

    def heal(self) -> None:
        self.healed = True


async def fail_midway(api, services, store, monkeypatch, account, token) -> Outage:
    """A deletion by `token` that fails after the user document and the sessions went, before the tokens,
    the photo, the memberships and the invitations: answered 503, the journal entry left."""
    outage = Outage(monkeypatch, services.sessions.tokens, "delete_many")
    assert_error(
        await api.delete(f"/users/{account.id}", token=token, json={"password": PASSWORD}), 503, "Database unavailable"
    )
    user_id = ObjectId(account.id)
    assert await stored(services, account.id) is None
    assert await store.deletions.count_documents({"_id": user_id}) == 1
    assert await store.tokens.count_documents({"userId": user_id}) >= 1  # reset and verify links
    assert await store.photos.count_documents({"_id": user_id}) == 1
    assert await store.memberships.count_documents({"userId": user_id}) == 1
    return outage


@pytest.fixture
def fast_sweep(monkeypatch):
    """The deletion sweep every 20 ms instead of every minute (set before the services start)."""
    monkeypatch.setattr(container, "DELETION_SWEEP_SECONDS", 0.02)


async def test_a_deletion_failing_midway_is_finished_by_the_sweep(
    fast_sweep, api, services, store, monkeypatch, caplog
):
    ada = await sign_up(api)
    other, org_id = await leave_traces(api, services, ada)
    outage = await fail_midway(api, services, store, monkeypatch, ada, ada.token)
    # The public photo URL refuses a user who no longer exists, though the photo's bytes are still stored.
    assert_error(await api.get(ada.photo_url), 404, "No photo")
    assert await store.photos.count_documents({"_id": ObjectId(ada.id)}) == 1
    assert_error(await api.get("/users/user", token=ada.token), 401)
    # The outage lasts: every sweep meets it, says so, and leaves the journal entry for the next one.
    while outage.calls < 3:
        await asyncio.sleep(0.01)
    assert await store.deletions.count_documents({}) == 1
    assert any(r.getMessage().startswith("deletion sweep failed (NotPrimaryError code=11602") for r in caplog.records)
    outage.heal()
    for _ in range(500):
        if not await store.deletions.count_documents({}):
            break
        await asyncio.sleep(0.01)
    await assert_erased(api, services, ada, other, org_id)
    assert (await api.get("/users/user", token=other.token)).code == 200


async def test_an_admins_retry_finishes_a_deletion_that_failed_midway(api, services, store, monkeypatch):
    ada = await sign_up(api)
    admin = await make_admin(api, services)
    other, org_id = await leave_traces(api, services, ada)
    outage = await fail_midway(api, services, store, monkeypatch, ada, admin.token)
    # Anyone else naming the half-deleted account still gets the 403 any other id gets, and changes nothing.
    assert_error(await api.delete(f"/users/{ada.id}", token=other.token), 403)
    assert await store.deletions.count_documents({"_id": ObjectId(ada.id)}) == 1
    outage.heal()
    response = await api.delete(f"/users/{ada.id}", token=admin.token)
    assert response.code == 204 and response.body == b""
    await assert_erased(api, services, ada, other, org_id)
    assert_error(await api.delete(f"/users/{ada.id}", token=admin.token), 404)  # nothing left to finish


# services/users.py Users.delete: `if actor["_id"] == user["_id"] and actor["role"] != "admin"` (an admin's own
# deletion waved through) would let a stolen admin token alone erase the admin account (CWE-620).
async def test_an_admin_deleting_their_own_account_needs_their_password(api, services, store):
    """Guard held by mutation testing: kills `admin-self-delete` in tools/guard_mutations.py."""
    admin = await make_admin(api, services)
    ada = await sign_up(api)
    before = await stored(services, admin.id)
    for method in (api.post, api.delete):
        assert error_fields(await method(f"/users/{admin.id}", token=admin.token, json={})) == {
            "password": "is required"
        }
        assert_error(
            await method(f"/users/{admin.id}", token=admin.token, json={"password": "a guess at it"}),
            401,
            "Authentication failed",
        )
    assert await stored(services, admin.id) == before
    assert await store.sessions.count_documents({"userId": ObjectId(admin.id)}) == 1
    # Deleting someone else needs none (the contract), and their own with the password works.
    assert (await api.delete(f"/users/{ada.id}", token=admin.token)).code == 204
    assert (await api.delete(f"/users/{admin.id}", token=admin.token, json={"password": PASSWORD})).code == 204
    assert await stored(services, admin.id) is None
