"""Found by the abuse review of many accounts from one address: the per-account limits were walked around by making more
accounts from one address.

Before: 120 sign-ups from one address in 1.2 s, all 201, mailing 320 strangers; three throwaway accounts invited
one victim 150 times and pushed a friend's real invitation out of the victim's list. Now each client address
(as TRUST_PROXY defines it) has an hourly budget of sign-ups and of invitations, counted in MongoDB.
"""

import asyncio

import pytest
from bson import ObjectId
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from handlers.routes import make_app
from services.container import Services
from settings import Settings, SettingsError
from tests.helpers import PASSWORD, Api, assert_error, sign_up
from tests.organisations_fixtures import create_org, invitations
from tests.users_fixtures import make_admin

HERE = {"X-Real-IP": "203.0.113.7"}
ELSEWHERE = {"X-Real-IP": "198.51.100.1"}
REGISTRATIONS_REFUSED = "Too many registrations from this address, try again later"
INVITATIONS_REFUSED = "Too many invitations from this address, try again later"


def register(api, n: int, headers=HERE, **fields):
    """POST /auth/register for a fresh address from `headers`' client address (both client shapes by n)."""
    shape = {"name": f"User {n}"} if n % 2 else {"firstName": "User", "lastName": str(n)}
    return api.post(
        "/auth/register",
        json={**shape, "email": f"user{n}@example.com", "password": PASSWORD, **fields},
        headers=headers,
    )


def assert_refused(response, message: str):
    assert_error(response, 429, message)
    assert 1 <= int(response.headers["Retry-After"]) <= 3600


def counted_hashes(services) -> list:
    """Record each bcrypt hash the service makes (it still makes it)."""
    calls = []
    hash_password = services.passwords.hash

    async def counting(password):
        calls.append(1)
        return await hash_password(password)

    services.passwords.hash = counting
    return calls


async def stored_counts(store) -> tuple:
    return (
        await store.users.count_documents({}),
        await store.organisations.count_documents({}),
        await store.memberships.count_documents({}),
        await store.sessions.count_documents({}),
        await store.outbox.count_documents({}),
    )


@pytest.fixture
def second_process(io_loop, services, config, http_client):
    """Another set of services and another HTTP server on the same database: what a second worker process
    shares with the first is MongoDB, and only that."""
    other = Services(config, services.database)
    sock, port = bind_unused_port()
    server = HTTPServer(make_app(other, config))
    server.add_sockets([sock])
    yield Api(http_client, f"http://127.0.0.1:{port}")
    server.stop()
    other.executor.shutdown(wait=False)


class TestRegistrationsPerAddress:
    @pytest.fixture
    def settings_env(self):
        return {"REGISTRATIONS_PER_ADDRESS_PER_HOUR": "3", "TRUST_PROXY": "true"}

    @pytest.mark.gen_test(timeout=30)
    async def test_past_the_budget_a_429_before_bcrypt_and_nothing_written(self, api, services, store):
        hashes = counted_hashes(services)
        for n in range(3):
            assert (await register(api, n)).code == 201
        assert len(hashes) == 3
        before = await stored_counts(store)
        for n in (3, 4):  # both shapes
            assert_refused(await register(api, n), REGISTRATIONS_REFUSED)
        # No hash, no user, no default organisation, no session, no verification email.
        assert len(hashes) == 3
        assert await stored_counts(store) == before
        assert await store.users.find_one({"email": "user3@example.com"}) is None
        # Another address has its own budget; the refused address's users still log in.
        assert (await register(api, 5, headers=ELSEWHERE)).code == 201
        await api.login("user0@example.com", PASSWORD, headers=HERE)

    @pytest.mark.gen_test(timeout=30)
    async def test_concurrent_sign_ups_never_overshoot(self, api, store):
        responses = await asyncio.gather(*[register(api, n) for n in range(10)])
        assert sorted(r.code for r in responses) == [201] * 3 + [429] * 7
        assert await store.users.count_documents({}) == 3

    @pytest.mark.gen_test(timeout=30)
    async def test_accounts_an_admin_creates_are_not_counted(self, api, services, store):
        admin = await make_admin(api, services)  # signed up from the test's own address, not HERE
        for n in range(5):
            response = await api.post(
                "/users",
                json={"name": f"Made {n}", "email": f"made{n}@example.com", "password": PASSWORD},
                token=admin.token,
                headers=HERE,
            )
            assert response.code == 201, response
        for n in range(3):
            assert (await register(api, n)).code == 201
        assert_refused(await register(api, 3), REGISTRATIONS_REFUSED)
        # ...and past the budget an admin still creates accounts from that address.
        response = await api.post(
            "/users",
            json={"name": "Made 9", "email": "made9@example.com", "password": PASSWORD},
            token=admin.token,
            headers=HERE,
        )
        assert response.code == 201, response
        assert await store.users.count_documents({}) == 1 + 6 + 3

    @pytest.mark.gen_test(timeout=30)
    async def test_the_count_is_shared_by_every_process(self, api, second_process, store):
        assert (await register(api, 0)).code == 201
        assert (await register(second_process, 1)).code == 201
        assert (await register(api, 2)).code == 201
        assert_refused(await register(second_process, 3), REGISTRATIONS_REFUSED)
        assert_refused(await register(api, 4), REGISTRATIONS_REFUSED)
        assert await store.users.count_documents({}) == 3

    @pytest.mark.gen_test(timeout=30)
    async def test_the_count_is_in_mongodb_with_a_hashed_key_and_an_expiry(self, api, store):
        assert (await register(api, 0)).code == 201
        documents = await store.budgets.find({}).to_list(10)
        assert len(documents) == 1
        assert "203.0.113.7" not in documents[0]["_id"] and documents[0]["count"] == 1
        assert documents[0]["expiresAt"] is not None

    @pytest.mark.gen_test(timeout=30)
    async def test_the_address_is_the_one_trust_proxy_names(self, api, store):
        # Behind nginx the address is X-Forwarded-For's last hop (the one nginx added): what a client writes
        # before it buys nothing.
        for n in range(3):
            forwarded = {"X-Forwarded-For": f"10.0.0.{n}, 192.0.2.1"}
            assert (await register(api, n, headers=forwarded)).code == 201
        assert_refused(
            await register(api, 3, headers={"X-Forwarded-For": "10.0.0.9, 192.0.2.1"}), REGISTRATIONS_REFUSED
        )
        assert (await register(api, 4, headers={"X-Forwarded-For": "192.0.2.2"})).code == 201
        assert await store.users.count_documents({}) == 4


class TestRegistrationsProxyHeadersIgnored:
    @pytest.fixture
    def settings_env(self):
        return {"REGISTRATIONS_PER_ADDRESS_PER_HOUR": "2"}

    @pytest.mark.gen_test(timeout=30)
    async def test_a_spoofed_header_does_not_buy_a_new_budget(self, api, store):
        # Without TRUST_PROXY, X-Real-IP is anyone's to send: the socket's address is what counts (CWE-348).
        for n in range(2):
            assert (await register(api, n, headers={"X-Real-IP": f"192.0.2.{n}"})).code == 201
        assert_refused(await register(api, 2, headers={"X-Real-IP": "192.0.2.99"}), REGISTRATIONS_REFUSED)
        assert await store.users.count_documents({}) == 2


class TestRegistrationsUnlimited:
    @pytest.fixture
    def settings_env(self):
        return {"REGISTRATIONS_PER_ADDRESS_PER_HOUR": "0"}

    @pytest.mark.gen_test(timeout=60)
    async def test_zero_turns_it_off(self, api, store):
        for n in range(22):
            assert (await register(api, n)).code == 201
        assert await store.budgets.count_documents({}) == 0


class TestInvitationsPerAddress:
    @pytest.fixture
    def settings_env(self):
        # Sign-ups unlimited, so the only counters stored are the invitations'.
        return {
            "INVITATIONS_PER_ADDRESS_PER_HOUR": "3",
            "TRUST_PROXY": "true",
            "REGISTRATIONS_PER_ADDRESS_PER_HOUR": "0",
        }

    async def invite(self, api, account, org_id, user_id, headers=HERE):
        return await api.post(
            f"/api/organisations/{org_id}/users", json={"userId": user_id}, token=account.token, headers=headers
        )

    @pytest.mark.gen_test(timeout=30)
    async def test_many_accounts_at_one_address_share_one_budget(self, api, store):
        victim = await sign_up(api, "victim@example.com")
        first, second = [await sign_up(api, f"thrower{n}@example.com") for n in range(2)]
        orgs = [
            (await create_org(api, account.token, name=f"Lure {n}"))["orgId"]
            for n, account in enumerate([first, first, second, second])
        ]
        for account, org_id in [(first, orgs[0]), (first, orgs[1]), (second, orgs[2])]:
            assert (await self.invite(api, account, org_id, victim.id)).code == 200
        # The second account has sent one invitation of its 50; the address has sent three of its three.
        assert_refused(await self.invite(api, second, orgs[3], victim.id), INVITATIONS_REFUSED)
        assert await store.invitations.count_documents({"userId": ObjectId(victim.id)}) == 3
        assert await store.invitations.find_one({"orgId": ObjectId(orgs[3])}) is None
        assert len(await invitations(api, victim.token)) == 3
        # A friend elsewhere still invites the victim.
        friend = await sign_up(api, "friend@example.com")
        team = (await create_org(api, friend.token, name="Real team"))["orgId"]
        assert (await self.invite(api, friend, team, victim.id, headers=ELSEWHERE)).code == 200
        assert (await invitations(api, victim.token))[0]["orgId"] == team

    @pytest.mark.gen_test(timeout=30)
    async def test_inviting_again_creates_nothing_and_spends_nothing(self, api, store):
        victim = await sign_up(api, "victim@example.com")
        inviter = await sign_up(api, "inviter@example.com")
        org_id = (await create_org(api, inviter.token, name="Team"))["orgId"]
        for _ in range(5):
            assert (await self.invite(api, inviter, org_id, victim.id)).code == 200
        assert await store.invitations.count_documents({}) == 1
        (counter,) = await store.budgets.find({}).to_list(10)
        assert counter["count"] == 1

    @pytest.mark.gen_test(timeout=30)
    async def test_the_count_is_shared_by_every_process(self, api, second_process, store):
        inviter = await sign_up(api, "inviter@example.com")
        org_id = (await create_org(api, inviter.token, name="Team"))["orgId"]
        invitees = [await sign_up(api, f"invitee{n}@example.com") for n in range(4)]
        for n, client in enumerate([api, second_process, api]):
            assert (await self.invite(client, inviter, org_id, invitees[n].id)).code == 200
        assert_refused(await self.invite(second_process, inviter, org_id, invitees[3].id), INVITATIONS_REFUSED)
        assert await store.invitations.count_documents({"orgId": ObjectId(org_id)}) == 3


def test_the_budgets_have_defaults_bounds_and_an_off_switch():
    settings = Settings.from_env({})
    assert (settings.registrations_per_address_per_hour, settings.invitations_per_address_per_hour) == (20, 100)
    for variable in ("REGISTRATIONS_PER_ADDRESS_PER_HOUR", "INVITATIONS_PER_ADDRESS_PER_HOUR"):
        assert getattr(Settings.from_env({variable: "0"}), variable.lower()) == 0
        for bad in ("-1", "many", "1000001"):
            with pytest.raises(SettingsError, match=variable):
                Settings.from_env({variable: bad})
