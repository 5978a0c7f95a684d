"""The comparison of the declared indexes with the server's, on listIndexes documents written as MongoDB 7/8
return them: a collation expanded with every option and its ICU version, `hidden: true`, several indexes on
the same keys where the server allows them."""

from pymongo import ASCENDING, IndexModel

from services.database import Database, IndexPlan, describe_spec, index_spec

NAME_CI = IndexModel([("name", ASCENDING)], name="name_ci", collation={"locale": "en", "strength": 2})


def collation(**changes) -> dict:
    """A collation as listIndexes returns one declared {locale: "en", strength: 2} (MongoDB 7.0, ICU 57.1)."""
    return {
        "locale": "en",
        "caseLevel": False,
        "caseFirst": "off",
        "strength": 2,
        "numericOrdering": False,
        "alternate": "non-ignorable",
        "maxVariable": "punct",
        "normalization": False,
        "backwards": False,
        "version": "57.1",
        **changes,
    }


def plan_for(declared: list, listed: list) -> IndexPlan:
    plan = IndexPlan()
    Database._plan_collection(plan, "users", declared, {doc["name"]: doc for doc in listed})
    return plan


def test_a_collation_index_as_the_server_lists_it_matches_its_declaration():
    listed = [{"v": 2, "key": {"name": 1}, "name": "name_ci", "collation": collation()}]
    plan = plan_for([NAME_CI], listed)
    assert plan.conflicts == [] and plan.missing == [] and plan.drops == []


def test_a_collation_that_differs_in_a_declared_option_or_the_strength_is_a_conflict():
    for changed in (collation(strength=1), collation(locale="fr")):
        plan = plan_for([NAME_CI], [{"v": 2, "key": {"name": 1}, "name": "name_ci", "collation": changed}])
        assert plan.drops == [("users", "name_ci")]
        assert [model.document["name"] for _, model in plan.missing] == ["name_ci"]
        assert plan.conflicts[0].startswith("users.name_ci is {name: 1} collation=")
    # Declared without a strength, the server's tertiary default matches; a strength 2 index does not.
    plain_strength = IndexModel([("name", ASCENDING)], name="name_ci", collation={"locale": "en"})
    assert not plan_for(
        [plain_strength], [{"v": 2, "key": {"name": 1}, "name": "name_ci", "collation": collation(strength=3)}]
    ).conflicts
    assert plan_for(
        [plain_strength], [{"v": 2, "key": {"name": 1}, "name": "name_ci", "collation": collation()}]
    ).conflicts


def test_an_index_on_the_same_keys_that_the_server_keeps_beside_the_declared_one_is_left_alone():
    email = IndexModel([("email", ASCENDING)], unique=True, name="email_unique")
    listed = [
        # Another collation, another partial filter: createIndexes builds email_unique beside them.
        {"v": 2, "key": {"email": 1}, "name": "email_ci", "collation": collation()},
        {"v": 2, "key": {"email": 1}, "name": "email_verified", "partialFilterExpression": {"isEmailVerified": True}},
    ]
    plan = plan_for([email], listed)
    assert plan.conflicts == [] and plan.drops == []
    assert [(collection, model.document["name"]) for collection, model in plan.missing] == [("users", "email_unique")]


def test_an_index_on_the_same_keys_and_options_under_another_name_is_in_the_way():
    email = IndexModel([("email", ASCENDING)], unique=True, name="email_unique")
    plan = plan_for([email], [{"v": 2, "key": {"email": 1}, "name": "email_1"}])
    assert plan.drops == [("users", "email_1")]
    assert plan.conflicts == ["users.email_1 {email: 1} has the keys of email_unique, declared {email: 1} unique"]
    # The same collation as the declared one (as the server lists it) does not make it another index either.
    declared = IndexModel([("name", ASCENDING)], name="name_ci", collation={"locale": "en", "strength": 2})
    plan = plan_for([declared], [{"v": 2, "key": {"name": 1}, "name": "name_1_en", "collation": collation()}])
    assert plan.drops == [("users", "name_1_en")]


def test_a_hidden_index_does_not_count_as_the_declared_one():
    email = IndexModel([("email", ASCENDING)], unique=True, name="email_unique")
    listed = [{"v": 2, "key": {"email": 1}, "name": "email_unique", "unique": True, "hidden": True}]
    plan = plan_for([email], listed)
    assert plan.conflicts == [
        "users.email_unique is {email: 1} unique hidden on the server, declared {email: 1} unique"
    ]
    assert plan.drops == [("users", "email_unique")]
    # Listed with hidden: false (after collMod unhid it), it is the declared index.
    assert not plan_for([email], [{**listed[0], "hidden": False}]).conflicts


def test_describe_spec_names_the_flags():
    assert describe_spec(index_spec({"key": {"a": 1}, "unique": True, "hidden": True})) == "{a: 1} unique hidden"
