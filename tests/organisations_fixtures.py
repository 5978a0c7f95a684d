"""HTTP helpers for the /api organisation and invitation tests."""

from bson import ObjectId

from tests.helpers import Store

INVITED = {"status": "success", "message": "User added to organisation successfully"}


async def create_org(api, token, **body):
    """Create an organisation through the API; returns its public view."""
    response = await api.post("/api/organisations", json=body, token=token)
    assert response.code == 201, response
    return response.json["data"]


async def invite(api, token, org_id, user_id):
    """POST /api/organisations/:orgId/users with the caller's token; returns the response."""
    return await api.post(f"/api/organisations/{org_id}/users", json={"userId": user_id}, token=token)


async def accept(api, token, org_id):
    """POST /api/invitations/:orgId/accept with the invited user's token; returns the response."""
    return await api.post(f"/api/invitations/{org_id}/accept", token=token)


async def join(api, member_token, org_id, user_id, user_token):
    """A member invites the user and the user accepts: the user is then a member."""
    response = await invite(api, member_token, org_id, user_id)
    assert response.code == 200 and response.json == INVITED, response
    response = await accept(api, user_token, org_id)
    assert response.code == 200, response


async def leave(api, token, org_id, user_id):
    """DELETE /api/organisations/:orgId/users/:userId with the caller's token; returns the response."""
    return await api.delete(f"/api/organisations/{org_id}/users/{user_id}", token=token)


async def org_ids(api, token):
    """The ids GET /api/organisations lists for the caller, in order."""
    response = await api.get("/api/organisations", token=token)
    assert response.code == 200, response
    return [org["orgId"] for org in response.json["data"]["organisations"]]


async def invitations(api, token):
    """The invitations GET /api/invitations lists for the caller, in order."""
    response = await api.get("/api/invitations", token=token)
    assert response.code == 200, response
    assert set(response.json) == {"status", "message", "data"}
    assert (response.json["status"], response.json["message"]) == ("success", "Invitations retrieved successfully")
    return response.json["data"]["invitations"]


async def member_count(services, org_id):
    store = Store(services.database)
    return await store.memberships.count_documents({"orgId": ObjectId(org_id)})


async def is_member(services, org_id, user_id) -> bool:
    store = Store(services.database)
    return await store.memberships.count_documents({"orgId": ObjectId(org_id), "userId": ObjectId(user_id)}) == 1


async def stored_invitations(services, **query) -> list:
    """The invitation documents matching query (ids given as strings), oldest first."""
    store = Store(services.database)
    query = {key: ObjectId(value) for key, value in query.items()}
    return await store.invitations.find(query).sort("_id").to_list(None)
