"""Re-check that the guard tests still kill the seven mutmut mutations that once survived, and the seven
hand-made security edits that no test caught (or would have caught) before them.

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
GUARDS = "tests/guards/test_guards.py::"
MAIL = GUARDS + "TestSingleUseTokens::"
SEMANTIC = "tests/guards/test_guards_semantic.py::"
TIMEOUT = 300  # seconds for one test run, however loaded the machine

# name: (file, original text, mutated text, tests that must fail)
MUTATIONS = {
    "500": (
        "handlers/base.py",
        '            status, message = 500, "Internal server error"\n',
        '            status, message = 200, "Internal server error"\n',
        [GUARDS + "test_an_unexpected_exception_is_a_500_envelope_without_a_traceback"],
    ),
    "verify-email-bound": (
        "services/users.py",
        '{"_id": user_id, "email": email}, {"$set": {"isEmailVerified": True',
        '{"_id": user_id}, {"$set": {"isEmailVerified": True',
        [MAIL + "test_an_email_change_racing_the_verify_step_verifies_nothing"],
    ),
    "session-expiry": (
        "services/sessions.py",
        'if user is None or session["expiresAt"] <= utcnow():',
        "if user is None:",
        [GUARDS + "test_access_token_stops_working_at_its_session_s_expiry"],
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
        'if user.get("isEmailVerified") or not await self.outbox.may_send(user["email"]):',
        'if not await self.outbox.may_send(user["email"]):',
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
            GUARDS + "test_api_answers_carry_every_security_header_including_csp",
            "tests/http/test_errors.py::test_every_response_has_security_headers_and_a_request_id",
        ],
    ),
    "session-user": (
        "services/sessions.py",
        '{"_id": session_id, "userId": user_id}',
        '{"_id": session_id}',
        [
            GUARDS + "test_one_user_s_sub_with_another_user_s_live_sid_is_refused",
            "tests/auth/test_sessions.py::test_tampered_expired_and_foreign_tokens_are_refused",
        ],
    ),
    # Issue 22: the five guards no test held (tests/guards/test_guards_semantic.py), and the notices and undo.
    "admin-self-delete": (
        "services/users.py",
        'if actor["_id"] == user["_id"]:',
        'if actor["_id"] == user["_id"] and actor["role"] != "admin":',
        [SEMANTIC + "test_an_admin_deleting_their_own_account_needs_their_password"],
    ),
    "spraying": (
        "services/login_attempts.py",
        "            await self.counter.reset(digest(email, address))\n",
        "            await self.counter.reset(digest(email, address))\n"
        "            await self.counter.reset(digest(address))\n",
        [SEMANTIC + "TestSpraying::test_a_successful_login_does_not_reset_the_address_s_count"],
    ),
    "budget-key": (
        "services/auth.py",
        'if user is None or not await self.outbox.may_send(user["email"]):',
        "if user is None or not await self.outbox.may_send(email):",
        [SEMANTIC + "TestEmailBudgetKey::test_the_budget_keys_the_stored_address_whatever_case_the_request_used"],
    ),
    "cors-exact": (
        "handlers/base.py",
        "return bool(origin) and origin in self.config.cors_origins",
        "return bool(origin) and any(origin.startswith(o) for o in self.config.cors_origins)",
        [SEMANTIC + "TestCorsExactOrigin::test_only_the_listed_origin_itself_gets_cors_headers"],
    ),
    "admin-password": (
        "services/users.py",
        'if existing["role"] == "admin" and await self.passwords.verify(password, existing["passwordHash"]):',
        'if existing["role"] == "admin":',
        [SEMANTIC + "test_a_new_admin_password_at_restart_retires_the_old_one_and_its_sessions"],
    ),
    "notice-budget": (
        "services/email.py",
        '        if not user.get("isEmailVerified"):\n            return\n',
        '        if not user.get("isEmailVerified") or not await self.may_send(user["email"]):\n            return\n',
        ["tests/auth/test_account_notices.py::TestTheBudgetCannotSilenceANotice"],
    ),
    "undo-revoke": (
        "services/users.py",
        "                 **model.revoke_sessions()},",
        "                 },",
        ["tests/auth/test_email_change_undo.py::test_a_failure_after_the_restore_leaves_no_session_behind"],
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
