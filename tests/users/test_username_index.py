"""Usernames are unique among string values only: users without one never collide, null or absent."""

import pytest
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from models import users as user_model


def username_index() -> dict:
    [index] = [m.document for m in user_model.INDEXES if list(m.document["key"]) == ["username"]]
    return index


def test_the_unique_username_index_says_what_it_means():
    index = username_index()
    assert index["unique"] is True
    assert index["partialFilterExpression"] == {"username": {"$type": "string"}}
    assert "sparse" not in index  # a sparse index still holds an explicit null, and a server refuses a second one
    assert index["name"] == "username_string_unique" and "username_unique" in user_model.RETIRED_INDEXES


@pytest.mark.gen_test
async def test_two_null_usernames_coexist_and_two_equal_strings_do_not(store):
    users = store.users
    await users.insert_one({"_id": ObjectId(), "email": "a@example.com", "username": None})
    await users.insert_one({"_id": ObjectId(), "email": "b@example.com", "username": None})
    await users.insert_one({"_id": ObjectId(), "email": "c@example.com"})
    await users.insert_one({"_id": ObjectId(), "email": "d@example.com", "username": "mark"})
    with pytest.raises(DuplicateKeyError):
        await users.insert_one({"_id": ObjectId(), "email": "e@example.com", "username": "mark"})
    assert await users.count_documents({}) == 4


@pytest.mark.gen_test
async def test_the_service_never_stores_a_null_username(api, store):
    first = await api.register(name="First User", email="first@example.com", username="first")
    await api.register(email="second@example.com")
    token, user_id = first["tokens"]["access"]["token"], first["user"]["id"]
    response = await api.patch(f"/users/{user_id}", json={"username": None}, token=token)
    assert response.code == 200 and response.json["username"] is None
    stored = await store.users.find({}, {"username": 1}).to_list(None)
    assert len(stored) == 2 and all("username" not in doc for doc in stored)
