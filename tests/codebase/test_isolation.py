"""The suite's isolation: every test starts on an empty store of its own, on the stand-in and on a server.

With MONGODB_URI each test (and each run.py a test starts) gets a database named for it alone, dropped
afterwards; without it, a new in-process store. Two tests here register the same email: the second would
get a 422 if it saw the first's user.
"""

import pytest

from tests.conftest import server_env
from tests.helpers import Store

SEEN = []  # (database name, client) of each test below, in the order they ran


async def register_on_a_clean_store(api, services, config):
    store = Store(services.database)
    assert await store.users.count_documents({}) == 0
    assert await store.organisations.count_documents({}) == 0
    response = await api.post(
        "/auth/register", json={"name": "Same Person", "email": "same@example.com", "password": "same-password-123"}
    )
    assert response.code == 201, response
    SEEN.append((config.mongodb_db, services.database.client))


@pytest.mark.gen_test
async def test_first_registration_of_an_email(api, services, config):
    await register_on_a_clean_store(api, services, config)


@pytest.mark.gen_test
async def test_same_email_again_on_its_own_store(api, services, config):
    await register_on_a_clean_store(api, services, config)
    if len(SEEN) == 2:  # both ran, in order
        (first_db, first_client), (second_db, second_client) = SEEN
        if config.embedded:
            assert second_client is not first_client
        else:
            assert first_db != second_db and first_db.startswith("accounts_test_")


def test_each_test_and_each_process_gets_its_own_database_on_a_server(monkeypatch):
    monkeypatch.setenv("MONGODB_URI", "mongodb://mongodb.invalid:27017/")
    names = {server_env()["MONGODB_DB"] for _ in range(50)}
    assert len(names) == 50 and all(name.startswith("accounts_test_") for name in names)
