"""MAX_ORGANISATIONS_PER_USER: creating or accepting past it is a 422, and nothing changes; the bound on what a
user's organisation listing and share_one read. Lowered to 3 here (the default is 1,000)."""

import asyncio

import pytest
from bson import ObjectId

from tests.helpers import error_fields, sign_up
from tests.organisations_fixtures import accept, create_org, invitations, invite, leave, org_ids

CAP = 3
FULL = {"body": f"you already belong to {CAP} organisations, the most one user may (leave one first)"}

pytestmark = pytest.mark.gen_test


@pytest.fixture
def settings_env():
    return {"MAX_ORGANISATIONS_PER_USER": str(CAP)}


async def fill(api, account) -> list:
    """Organisations up to the cap (the default one included); their ids in join order."""
    for number in range(CAP - 1):
        await create_org(api, account.token, name=f"Team {number}", description="")
    ids = await org_ids(api, account.token)
    assert len(ids) == CAP
    return ids


async def test_creating_past_the_cap_is_a_422_and_creates_nothing(api, store):
    ada = await sign_up(api)
    ids = await fill(api, ada)
    before = await store.organisations.count_documents({})
    response = await api.post("/api/organisations", json={"name": "One too many", "description": ""}, token=ada.token)
    assert error_fields(response) == FULL
    assert await store.organisations.count_documents({}) == before
    assert await org_ids(api, ada.token) == ids
    # Leaving one makes room again.
    assert (await leave(api, ada.token, ids[-1], ada.id)).code == 204
    await create_org(api, ada.token, name="Now there is room", description="")


async def test_accepting_past_the_cap_is_a_422_and_keeps_the_invitation(api, store):
    ada = await sign_up(api)
    bob = await sign_up(api, email="bob@example.com", name="Bob Builder")
    ids = await fill(api, ada)
    bobs_org = (await org_ids(api, bob.token))[0]
    assert (await invite(api, bob.token, bobs_org, ada.id)).code == 200
    assert error_fields(await accept(api, ada.token, bobs_org)) == FULL
    assert await org_ids(api, ada.token) == ids
    assert await store.memberships.count_documents({"orgId": ObjectId(bobs_org), "userId": ObjectId(ada.id)}) == 0
    assert [inv["orgId"] for inv in await invitations(api, ada.token)] == [bobs_org]
    assert (await leave(api, ada.token, ids[-1], ada.id)).code == 204
    assert (await accept(api, ada.token, bobs_org)).code == 200
    assert await org_ids(api, ada.token) == ids[:-1] + [bobs_org]


async def test_concurrent_creates_never_overshoot_the_cap(api, store):
    ada = await sign_up(api)  # one organisation: room for two more
    responses = await asyncio.gather(
        *(
            api.post("/api/organisations", json={"name": f"Race {n}", "description": ""}, token=ada.token)
            for n in range(6)
        )
    )
    assert sorted(r.code for r in responses) == [201, 201, 422, 422, 422, 422]
    assert await store.memberships.count_documents({"userId": ObjectId(ada.id)}) == CAP
    # The refused ones left no organisation behind.
    assert await store.organisations.count_documents({"createdBy": ObjectId(ada.id)}) == CAP
