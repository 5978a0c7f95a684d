"""Expiry: MongoDB's TTL indexes on a real server; the minute sweep on the embedded store."""

import datetime as dt

import pytest

pytestmark = pytest.mark.gen_test


async def test_sweep_removes_expired_documents_and_keeps_live_ones(api, services, store):
    await api.register(email="old@example.com")
    live = await api.register(email="new@example.com")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    sessions, tokens = store.sessions, store.tokens
    old_user = (await services.users.find_by_email("old@example.com"))["_id"]
    await sessions.update_many({"userId": old_user}, {"$set": {"expiresAt": past}})
    await tokens.update_many({"userId": old_user}, {"$set": {"expiresAt": past}})
    await services.database.sweep_expired()
    assert await sessions.count_documents({"userId": old_user}) == 0
    assert await tokens.count_documents({"userId": old_user}) == 0
    assert await sessions.count_documents({}) == 1
    assert (await api.post("/auth/send-verification-email", token=live["tokens"]["access"]["token"])).code == 204


async def test_ttl_indexes_expire_on_a_real_server_and_by_sweep_on_the_embedded_store(store, config):
    info = await store.sessions.index_information()
    ttl = info["expiry_ttl"]
    if config.embedded:
        assert "expireAfterSeconds" not in ttl  # the stand-in would check it on every access
    else:
        assert ttl["expireAfterSeconds"] == 0
