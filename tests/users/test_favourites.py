"""Favourite boards: addToFav, removeFromFav, getFav; atomic, no duplicates, oldest first, at most 500."""

import asyncio

import pytest
from bson import ObjectId

from tests.helpers import assert_error, error_fields, sign_up
from tests.users_fixtures import stored

pytestmark = pytest.mark.gen_test


async def add(api, account, board_id):
    return await api.put("/users/addToFav", token=account.token, json={"boardId": board_id})


async def remove(api, account, board_id):
    return await api.put("/users/removeFromFav", token=account.token, json={"boardId": board_id})


async def test_add_remove_and_get_keep_order_without_duplicates(api, services):
    ada = await sign_up(api)
    for board in ("b1", "b2", "b3"):
        response = await add(api, ada, board)
        assert response.code == 200, response
    assert response.json == {"favoriteBoards": ["b1", "b2", "b3"]}
    again = await add(api, ada, "b1")
    assert again.code == 200 and again.json == {"favoriteBoards": ["b1", "b2", "b3"]}
    assert (await remove(api, ada, "b2")).json == {"favoriteBoards": ["b1", "b3"]}
    assert (await remove(api, ada, "nope")).json == {"favoriteBoards": ["b1", "b3"]}
    assert (await add(api, ada, "b2")).json == {"favoriteBoards": ["b1", "b3", "b2"]}
    assert (await api.get("/users/getFav", token=ada.token)).json == {"favoriteBoards": ["b1", "b3", "b2"]}
    assert (await stored(services, ada.id))["favoriteBoards"] == ["b1", "b3", "b2"]
    assert (await api.get("/users/user", token=ada.token)).json["favoriteBoards"] == ["b1", "b3", "b2"]
    # Each user has their own.
    bob = await sign_up(api, email="bob@example.com", name="Bob")
    assert (await api.get("/users/getFav", token=bob.token)).json == {"favoriteBoards": []}


@pytest.mark.gen_test(timeout=30)
async def test_concurrent_adds_lose_nothing(api, services):
    ada = await sign_up(api)
    boards = [f"board-{n}" for n in range(40)]
    responses = await asyncio.gather(*[add(api, ada, board) for board in boards])
    assert all(r.code == 200 for r in responses)
    stored_boards = (await stored(services, ada.id))["favoriteBoards"]
    assert sorted(stored_boards) == sorted(boards) and len(stored_boards) == 40
    # Each response shows its own board among those added so far.
    assert all(board in r.json["favoriteBoards"] for board, r in zip(boards, responses, strict=False))


@pytest.mark.gen_test(timeout=30)
async def test_concurrent_duplicates_leave_one_copy(api, services):
    ada = await sign_up(api)
    responses = await asyncio.gather(*[add(api, ada, "same") for _ in range(25)])
    assert all(r.code == 200 and r.json == {"favoriteBoards": ["same"]} for r in responses)
    assert (await stored(services, ada.id))["favoriteBoards"] == ["same"]
    responses = await asyncio.gather(*[remove(api, ada, "same") for _ in range(10)])
    assert all(r.json == {"favoriteBoards": []} for r in responses)


async def test_at_most_500(api, store):
    ada = await sign_up(api)
    full = [f"b{n}" for n in range(500)]
    await store.users.update_one({"_id": ObjectId(ada.id)}, {"$set": {"favoriteBoards": full}})
    assert error_fields(await add(api, ada, "one-more")) == {"boardId": "favourites are full: at most 500 boards"}
    assert (await add(api, ada, "b7")).json["favoriteBoards"] == full  # already there: fine
    assert (await remove(api, ada, "b0")).code == 200
    added = await add(api, ada, "one-more")
    assert added.code == 200 and added.json["favoriteBoards"][-1] == "one-more"
    assert len(added.json["favoriteBoards"]) == 500


async def test_board_id_is_validated_and_a_token_required(api):
    ada = await sign_up(api)
    cases = [
        ({}, {"boardId": "is required"}),
        ({"boardId": ""}, None),
        ({"boardId": "x" * 65}, None),
        ({"boardId": 5}, {"boardId": "must be a string"}),
        ({"boardId": {"$ne": None}}, None),
        ({"boardId": "a\nb"}, None),
        ({"boardId": "b", "extra": 1}, {"extra": "is not allowed"}),
    ]
    for body, expected in cases:
        for path in ("/users/addToFav", "/users/removeFromFav"):
            fields = error_fields(await api.put(path, token=ada.token, json=body))
            assert fields == expected if expected else "boardId" in fields, (path, body, fields)
    assert (await add(api, ada, "x" * 64)).code == 200
    assert_error(await api.put("/users/addToFav", json={"boardId": "b"}), 401)
    assert_error(await api.get("/users/getFav"), 401)
    assert_error(await api.post("/users/addToFav", token=ada.token, json={"boardId": "b"}), 405)
