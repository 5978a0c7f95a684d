"""Re-check that the guard tests still kill hand-made semantic mutations: the seven mutmut mutations that once
survived, the five guards no test held with the notices and the undo, and the two-factor and session-list
guards (docs/history/mutation-testing.md).

    python tools/guard_mutations.py            # all of them
    python tools/guard_mutations.py csp ttl    # some, by name

Each mutation is one textual replacement in one file, applied in a scratch copy of the work tree
(never in the tree itself); the named tests run there with pytest and must FAIL. Exit status 1 when
a mutation survives or no longer applies (the code moved on: update the table and docs/developing/testing.md).
"""

import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ERRORS = "tests/http/test_errors.py::"
TOKENS = "tests/auth/test_tokens.py::"
MAIL = "tests/auth/test_single_use_tokens.py::TestSingleUseTokens::"
DELETE = "tests/users/test_delete.py::"
ATTEMPT_LIMITS = "tests/auth/test_attempt_limits.py::"
ADMIN_BOOTSTRAP = "tests/operations/test_admin_bootstrap.py::"
TWO_FACTOR = "tests/auth/test_two_factor.py::"
SESSION_LIST = "tests/auth/test_sessions_list.py::"
EPOCH = "tests/auth/test_revocation_epoch.py::"
ON_AND_OFF = TWO_FACTOR + "test_enable_and_disable_end_the_other_sessions_and_keep_the_callers"
ON_CLEANUP_FAILS = TWO_FACTOR + "test_turning_it_on_or_off_ends_the_other_sessions_even_when_the_cleanup_fails"
OFF_CLEANUP_FAILS = TWO_FACTOR + "test_turning_it_off_ends_the_other_sessions_even_when_the_cleanup_fails"
TIMEOUT = 300  # seconds for one test run, however loaded the machine

# name: (file, original text, mutated text, tests that must fail)
MUTATIONS = {
    "500": (
        "handlers/base.py",
        '            status, message = 500, "Internal server error"\n',
        '            status, message = 200, "Internal server error"\n',
        [ERRORS + "test_an_unexpected_exception_is_a_500_envelope_without_a_traceback"],
    ),
    "verify-email-bound": (
        "services/users.py",
        '{"_id": user_id, "email": email}, {"$set": {"isEmailVerified": True',
        '{"_id": user_id}, {"$set": {"isEmailVerified": True',
        [MAIL + "test_an_email_change_racing_the_verify_step_verifies_nothing"],
    ),
    "session-expiry": (
        "services/sessions.py",
        'if user is None or session["expiresAt"] <= now or not is_current(session, user):',
        "if user is None or not is_current(session, user):",
        [TOKENS + "test_access_token_stops_working_at_its_session_s_expiry"],
    ),
    "single-use-type": (
        "services/sessions.py",
        '{"hash": hash_token(raw), "type": kind, "usedAt": None',
        '{"hash": hash_token(raw), "usedAt": None',
        # (test_a_refresh_token_is_not_a_reset_token is also held by the email binding,
        # which a refresh token lacks: it passes against this mutation, by design.)
        [MAIL + "test_reset_and_verify_tokens_do_not_stand_in_for_each_other"],
    ),
    "verified-no-mail": (
        "services/auth.py",
        'if user.get("isEmailVerified") or not await self.outbox.may_send(user["email"], "verif',
        'if not await self.outbox.may_send(user["email"], "verif',
        [
            MAIL + "test_an_already_verified_user_is_sent_no_verification_email",
            "tests/auth/test_email_flows.py::test_verify_email_link_works_once",
        ],
    ),
    "csp": (
        "handlers/base.py",
        "    \"Content-Security-Policy\": \"default-src 'none'; frame-ancestors 'none'\",\n",
        "",
        [
            ERRORS + "test_api_answers_carry_every_security_header_including_csp",
            ERRORS + "test_every_response_has_security_headers_and_a_request_id",
        ],
    ),
    "session-user": (
        "services/sessions.py",
        'find_one({"_id": session_id, "userId": user_id})',
        'find_one({"_id": session_id})',
        [
            TOKENS + "test_one_user_s_sub_with_another_user_s_live_sid_is_refused",
            "tests/auth/test_sessions.py::test_tampered_expired_and_foreign_tokens_are_refused",
        ],
    ),
    # The five guards no test held (found by semantic mutations), and the notices and undo.
    "admin-self-delete": (
        "services/users.py",
        'if actor["_id"] == user["_id"]:',
        'if actor["_id"] == user["_id"] and actor["role"] != "admin":',
        [DELETE + "test_an_admin_deleting_their_own_account_needs_their_password"],
    ),
    "spraying": (
        "services/login_attempts.py",
        "            await self.counter.reset(digest(email, address))\n",
        "            await self.counter.reset(digest(email, address))\n"
        "            await self.counter.reset(digest(address))\n",
        [ATTEMPT_LIMITS + "TestSpraying::test_a_successful_login_does_not_reset_the_address_s_count"],
    ),
    "budget-key": (
        "services/auth.py",
        'if user is None or not await self.outbox.may_send(user["email"], "reset"):',
        'if user is None or not await self.outbox.may_send(email, "reset"):',
        [ATTEMPT_LIMITS + "TestEmailBudgetKey::test_the_budget_keys_the_stored_address_whatever_case_the_request_used"],
    ),
    "cors-exact": (
        "handlers/base.py",
        "return bool(origin) and origin in self.config.cors_origins",
        "return bool(origin) and any(origin.startswith(o) for o in self.config.cors_origins)",
        [ERRORS + "TestCorsExactOrigin::test_only_the_listed_origin_itself_gets_cors_headers"],
    ),
    "admin-password": (
        "services/users.py",
        'if existing["role"] == "admin" and await self.passwords.verify(password, existing["passwordHash"]):',
        'if existing["role"] == "admin":',
        [ADMIN_BOOTSTRAP + "test_a_new_admin_password_at_restart_retires_the_old_one_and_its_sessions"],
    ),
    "notice-budget": (
        "services/email.py",
        '        if not user.get("isEmailVerified"):\n            return\n',
        '        if not user.get("isEmailVerified") or not await self.may_send(user["email"]):\n            return\n',
        ["tests/auth/test_account_notices.py::TestTheBudgetCannotSilenceANotice"],
    ),
    "undo-revoke": (
        "services/users.py",
        "            **model.revoke_sessions(),\n        }\n        for _ in range(5):",
        "        }\n        for _ in range(5):",
        ["tests/auth/test_email_change_undo.py::test_a_failure_after_the_restore_leaves_no_session_behind"],
    ),
    # Two-factor and the session list, asked "what single edit here would be a security bug?"
    "2fa-replay": (
        "services/two_factor.py",
        '{"_id": user["_id"], "twoFactorEnabled": True, "totpLastStep": {"$not": {"$gte": step}}}',
        '{"_id": user["_id"], "twoFactorEnabled": True}',
        [
            TWO_FACTOR + "test_setup_enable_and_sign_in_with_a_code",
            TWO_FACTOR + "test_a_code_is_refused_the_second_time_and_an_older_one_after_it",
        ],
    ),
    "2fa-drift": (
        "services/two_factor.py",
        "DRIFT_STEPS = 1 ",
        "DRIFT_STEPS = 20 ",
        [TWO_FACTOR + "test_codes_further_than_one_step_away_are_refused"],
    ),
    "2fa-recovery-twice": (
        "services/two_factor.py",
        '        result = await self.collection.update_one(unused, {"$pull": {"recoveryCodes": '
        "digest}})\n        return result.modified_count == 1\n",
        "        return await self.collection.find_one(unused) is not None\n",
        [
            TWO_FACTOR + "test_recovery_codes_sign_in_once_each",
            TWO_FACTOR + "test_the_same_code_sent_twice_at_once_signs_in_once",
        ],
    ),
    "2fa-tokens-without-otp": (
        "services/auth.py",
        "        if two_factor:\n",
        "        if two_factor and otp is not None:\n",
        [
            TWO_FACTOR + "test_setup_enable_and_sign_in_with_a_code",
            TWO_FACTOR + "test_browsers_get_the_cookie_only_once_the_code_passed",
        ],
    ),
    "2fa-session-before-otp": (
        "services/auth.py",
        "        if two_factor:\n",
        '        await self.sessions.start(user, verified_hash=user["passwordHash"])\n        if two_factor:\n',
        [
            TWO_FACTOR + "test_setup_enable_and_sign_in_with_a_code",
            TWO_FACTOR + "test_a_wrong_or_missing_otp_opens_no_session",
        ],
    ),
    "2fa-password-clears-count": (
        "services/auth.py",
        "clear=not two_factor)",
        "clear=True)",
        [TWO_FACTOR + "test_a_right_password_without_its_second_factor_is_not_a_success"],
    ),
    "2fa-disable-clears-count": (
        "services/two_factor.py",
        '"currentPassword", address, clear=False)',
        '"currentPassword", address)',
        [TWO_FACTOR + "test_wrong_codes_on_disable_are_counted_even_with_the_right_password"],
    ),
    "2fa-disable-without-code": (
        "services/two_factor.py",
        "        if not await self.check_code(stored, code):\n",
        "        if False:\n",
        [ON_AND_OFF],
    ),
    "2fa-disable-without-password": (
        "services/two_factor.py",
        '        await self.users.confirm_password(user, current_password, "currentPassword", address, clear=False)\n',
        "",
        [ON_AND_OFF],
    ),
    "2fa-enable-keeps-sessions": (
        "services/two_factor.py",
        '                "$unset": {"totpPending": ""},\n                **user_model.revoke_sessions(),\n',
        '                "$unset": {"totpPending": ""},\n',
        [ON_CLEANUP_FAILS],
    ),
    "2fa-disable-keeps-sessions": (
        "services/two_factor.py",
        '                "$unset": user_model.TWO_FACTOR_STATE,\n                **user_model.revoke_sessions(),\n'
        "            },\n            projection=user_model.EPOCH_ONLY,",
        '                "$unset": user_model.TWO_FACTOR_STATE,\n            },\n'
        "            projection=user_model.EPOCH_ONLY,",
        [OFF_CLEANUP_FAILS],
    ),
    "2fa-admin-turns-on": (
        "models/schemas/users.py",
        '"twoFactorEnabled": {\n            "const": False,',
        '"twoFactorEnabled": {\n            "type": "boolean",',
        [
            TWO_FACTOR + "test_an_admin_may_turn_it_off_for_someone_else_and_nobody_may_turn_it_on",
            TWO_FACTOR + "test_nobody_turns_it_on_through_the_user_update",
        ],
    ),
    "2fa-admin-own-off": (
        "services/users.py",
        '(actor["role"] != "admin" or actor["_id"] == user["_id"])',
        '(actor["role"] != "admin")',
        [TWO_FACTOR + "test_an_admin_turns_off_their_own_only_with_a_code"],
    ),
    "2fa-admin-off-keeps-sessions": (
        "services/users.py",
        '\n            or "twoFactorEnabled" in changes\n        )',
        "\n        )",
        [TWO_FACTOR + "test_an_admin_may_turn_it_off_for_someone_else_and_nobody_may_turn_it_on", ON_CLEANUP_FAILS],
    ),
    "session-end-another-users": (
        "services/sessions.py",
        'self.sessions.delete_one({"_id": session_id, "userId": user_id})',
        'self.sessions.delete_one({"_id": session_id})',
        [SESSION_LIST + "test_another_users_unknown_or_malformed_session_id_is_a_404_and_ends_nothing"],
    ),
    "session-list-another-users": (
        "services/sessions.py",
        'query = {"userId": user["_id"], "expiresAt"',
        'query = {"expiresAt"',
        [SESSION_LIST + "test_the_list_shows_the_callers_live_sessions_newest_first"],
    ),
    "session-list-revoked": (
        "services/sessions.py",
        " if is_current(session, user)]",
        "]",
        [SESSION_LIST + "test_the_list_shows_the_callers_live_sessions_newest_first"],
    ),
    "rotate-skips-epoch": (
        "services/sessions.py",
        "if session is None or user is None or not is_current(session, user):",
        "if session is None or user is None:",
        [EPOCH + "test_the_epoch_alone_ends_every_session", ON_CLEANUP_FAILS, OFF_CLEANUP_FAILS],
    ),
    "authenticate-skips-epoch": (
        "services/sessions.py",
        'if user is None or session["expiresAt"] <= now or not is_current(session, user):',
        'if user is None or session["expiresAt"] <= now:',
        [EPOCH + "test_the_epoch_alone_ends_every_session", ON_CLEANUP_FAILS],
    ),
    "keep-revives-ended": (
        "services/sessions.py",
        '{"_id": session_id, "userId": user_id, "epoch": previous}',
        '{"_id": session_id, "userId": user_id}',
        [EPOCH + "test_a_change_raced_by_another_revocation_keeps_no_session"],
    ),
    "keep-older-pairs": (
        "services/sessions.py",
        '"keptJti": access_jti}, "$inc": {"gen": 1}}',
        '"keptJti": access_jti}}',
        [
            EPOCH + "test_a_self_update_with_a_password_keeps_only_the_callers_pair",
            TWO_FACTOR + "test_turning_it_on_keeps_only_the_callers_own_pair",
        ],
    ),
}


def copy_tree(target: str) -> None:
    ignore = shutil.ignore_patterns(".git", "mutants", "__pycache__", ".mutmut-cache", "bench")
    shutil.copytree(ROOT, target, ignore=ignore, dirs_exist_ok=True)


def run_tests(tree: str, tests: list) -> int:
    """pytest's exit status for these tests in tree: 0 passed, 1 some failed; None when it timed out."""
    try:
        # -n 0: under pytest-xdist workers, -x stops with exit status 2, which would read as "not killed".
        command = [sys.executable, "-m", "pytest", "-q", "-x", "-n", "0", "-p", "no:randomly", *tests]
        result = subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as timed_out:
        print(f"  timed out after {TIMEOUT} s:", (timed_out.stdout or b"")[-500:], flush=True)
        return None
    if result.returncode not in (0, 1):
        print(result.stdout[-3000:], result.stderr[-3000:], flush=True)
    return result.returncode


def check(tree: str, name: str) -> bool:
    """True when the mutation applies and every one of its tests fails against it."""
    path, original, mutated, tests = MUTATIONS[name]
    file = os.path.join(tree, path)
    with open(file, encoding="utf-8") as f:
        source = f.read()
    if source.count(original) != 1:
        print(f"{name}: the original text is not in {path} exactly once; update tools/guard_mutations.py", flush=True)
        return False
    with open(file, "w", encoding="utf-8") as f:
        f.write(source.replace(original, mutated))
    try:
        clean = True
        for test in tests:
            killed = run_tests(tree, [test]) == 1
            print(f"{name}: {'killed by' if killed else 'SURVIVED'} {test}", flush=True)
            clean = clean and killed
        return clean
    finally:
        with open(file, "w", encoding="utf-8") as f:
            f.write(source)


def main(names: list) -> int:
    names = names or list(MUTATIONS)
    unknown = [n for n in names if n not in MUTATIONS]
    if unknown:
        print(f"unknown mutation(s) {unknown}; known: {', '.join(MUTATIONS)}")
        return 2
    with tempfile.TemporaryDirectory(prefix="guard-mutations-") as tree:
        copy_tree(tree)
        if run_tests(tree, sorted({t for n in names for t in MUTATIONS[n][3]})) != 0:
            print("the guard tests do not pass on the unmutated code")
            return 1
        results = [check(tree, name) for name in names]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
