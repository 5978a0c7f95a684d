"""Two-factor sign-in: TOTP (RFC 6238, by pyotp) with single-use recovery codes (docs/using/two-factor.md).

The secret is stored encrypted (AES-GCM from the `cryptography` package, key derived by HKDF from
TOTP_ENCRYPTION_KEY or JWT_SECRET, the user's id bound as associated data), so a database dump alone does
not give the codes. A code is accepted once: the time step it belongs to must be later than the last one
used, recorded by one conditional write. Recovery codes are stored as SHA-256 hashes and pulled when used.
"""

import base64
import hashlib
import hmac
import os
import re
import secrets
import time

import pyotp
from bson import ObjectId
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pymongo import ReturnDocument

from models import users as user_model
from models.common import utcnow
from services.errors import field_error

STEP_SECONDS = 30  # RFC 6238's default, what every authenticator app uses
DRIFT_STEPS = 1  # one step either way: a phone clock a little off, a code typed as it turns
RECOVERY_CODES = 10
_SIX_DIGITS = re.compile(r"[0-9]{6}")
_NONCE_BYTES = 12
_KEY_INFO = b"accounts/two-factor-secret/v1"
# Recovery codes: 16 characters of base32 (80 bits), shown as four groups of four; read back in any case, with
# or without the dashes and spaces.
_RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_RECOVERY_SEPARATORS = re.compile(r"[\s-]+")


class SecretBox:
    """Encrypts a TOTP secret for one user (AES-256-GCM; the user id is authenticated with it, so a sealed secret
    copied onto another account does not open)."""

    def __init__(self, key_material: str):
        # HKDF: the JWT signing key is never used as an encryption key itself (CWE-323).
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO).derive(key_material.encode())
        self._aead = AESGCM(key)

    def seal(self, secret: str, user_id: ObjectId) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, secret.encode(), user_id.binary)
        return base64.urlsafe_b64encode(sealed).decode("ascii")

    def open(self, sealed: str | None, user_id: ObjectId) -> str | None:
        """The secret, or None when there is none or it does not open (another key, another user, altered)."""
        if not sealed:
            return None
        try:
            raw = base64.urlsafe_b64decode(sealed.encode("ascii"))
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], user_id.binary).decode()
        except (InvalidTag, ValueError, UnicodeError):
            return None


def matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step whose TOTP code is `code` (within DRIFT_STEPS of the step `now` falls in), or None."""
    if not _SIX_DIGITS.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret)  # SHA-1, 6 digits, 30 s: RFC 6238's defaults
    current = int(now // STEP_SECONDS)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        # Every candidate compared, in constant time: nothing tells how close a guess was (CWE-208).
        if hmac.compare_digest(totp.generate_otp(step), code) and found is None:
            found = step
    return found


def recovery_hash(code: str) -> str:
    """The SHA-256 under which a recovery code is stored (80 random bits: a fast hash suffices, as for tokens)."""
    return hashlib.sha256(_RECOVERY_SEPARATORS.sub("", code).lower().encode()).hexdigest()


def new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


class TwoFactor:
    """Setting up, turning on and off, and checking a user's second factor."""

    def __init__(self, database, settings, *, users, sessions, outbox):
        self.collection = database[user_model.COLLECTION]
        self.settings = settings
        self.users = users
        self.sessions = sessions
        self.outbox = outbox  # the notice to the account's address when two-factor goes on or off
        self.box = SecretBox(settings.totp_encryption_key or settings.jwt_secret)
        self.clock = time.time  # the codes' clock, in seconds since the epoch

    async def setup(self, user: dict, current_password: str, address: str) -> dict:
        """A new secret, pending until enabled (it replaces a pending one); the password is re-checked first."""
        await self.users.confirm_password(user, current_password, "currentPassword", address)
        secret = pyotp.random_base32()  # 160 bits, from the secrets module
        result = await self.collection.update_one(
            {"_id": user["_id"], "twoFactorEnabled": {"$ne": True}},
            {"$set": {"totpPending": self.box.seal(secret, user["_id"]), "updatedAt": utcnow()}},
        )
        if result.matched_count != 1:
            raise field_error("body", "two-factor sign-in is already on")
        url = pyotp.TOTP(secret).provisioning_uri(name=user["email"], issuer_name=self.settings.app_name)
        return {"secret": secret, "otpauthUrl": url}

    async def enable(
        self, user: dict, code: str, address: str, *, session_id: ObjectId, access_jti: str | None
    ) -> list:
        """Turn two-factor on with a current code of the pending secret; returns the recovery codes (shown once).
        Every other session ends in the same write. Each try is a login attempt, cleared when the code passes."""
        # Counted like a login: a stolen token must not guess the code of its owner's pending setup without bound
        # and walk away with the recovery codes (CWE-307).
        await self.users.login_attempts.attempt(user["email"], address)
        stored = await self.users.require(user["_id"])
        if stored.get("twoFactorEnabled"):
            raise field_error("code", "two-factor sign-in is already on")
        pending = stored.get("totpPending")
        secret = self.box.open(pending, user["_id"])
        if secret is None:
            raise field_error("code", "set up two-factor sign-in first")
        step = matching_step(secret, code, self.clock())
        if step is None:
            raise field_error("code", "is not the current code")
        codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
        # Only the very secret this code was checked against, and only once (a second enable finds it gone).
        updated = await self.collection.find_one_and_update(
            {"_id": user["_id"], "totpPending": pending, "twoFactorEnabled": {"$ne": True}},
            {
                "$set": {
                    "twoFactorEnabled": True,
                    "totpSecret": pending,
                    "totpLastStep": step,
                    "updatedAt": utcnow(),
                    "twoFactorEnabledAt": utcnow(),
                    "recoveryCodes": [recovery_hash(c) for c in codes],
                },
                "$unset": {"totpPending": ""},
                **user_model.revoke_sessions(),
            },
            projection=user_model.EPOCH_ONLY,
            return_document=ReturnDocument.AFTER,
        )
        if updated is None:
            raise field_error("code", "set up two-factor sign-in first")
        await self.users.attempts_passed(user["email"], address)
        await self.sessions.keep_after_revoking(user["_id"], session_id, access_jti, user_model.session_epoch(updated))
        await self.outbox.two_factor_notice(stored, enabled=True)  # whoever did it, the owner hears (CWE-778)
        return codes

    async def disable(
        self,
        user: dict,
        current_password: str,
        code: str,
        address: str,
        *,
        session_id: ObjectId,
        access_jti: str | None,
    ) -> None:
        """Turn two-factor off with the password and a current code or an unused recovery code; every other
        session ends in the same write. A wrong code leaves the password check counted as a failed attempt."""
        # Not cleared on success yet: the code is the other half of this check (CWE-307).
        await self.users.confirm_password(user, current_password, "currentPassword", address, clear=False)
        stored = await self.users.require(user["_id"])
        if not stored.get("twoFactorEnabled"):
            raise field_error("code", "two-factor sign-in is not on")
        if not await self.check_code(stored, code):
            raise field_error("code", "is not a current code or an unused recovery code")
        await self.users.attempts_passed(user["email"], address)
        updated = await self.collection.find_one_and_update(
            {"_id": user["_id"], "twoFactorEnabled": True},
            {
                "$set": {"twoFactorEnabled": False, "updatedAt": utcnow()},
                "$unset": user_model.TWO_FACTOR_STATE,
                **user_model.revoke_sessions(),
            },
            projection=user_model.EPOCH_ONLY,
            return_document=ReturnDocument.AFTER,
        )
        if updated is None:
            return  # turned off meanwhile (by an admin, or another request): nothing left to do
        await self.sessions.keep_after_revoking(user["_id"], session_id, access_jti, user_model.session_epoch(updated))
        await self.outbox.two_factor_notice(stored, enabled=False)  # a thief turning it off is heard (CWE-778)

    async def check_code(self, user: dict, code: str) -> bool:
        """True when code is a current TOTP code not used before, or an unused recovery code; either is used up
        by one conditional write, so of two requests with the same code only one passes (CWE-294)."""
        # Counted per account, whatever the address: the limiter's pairs alone let many addresses guess (CWE-307).
        await self.users.login_attempts.second_factor(str(user["_id"]))
        if await self._check_code(user, code.strip()):
            await self.users.login_attempts.second_factor_passed(str(user["_id"]))
            return True
        return False

    async def _check_code(self, user: dict, code: str) -> bool:
        """check_code's test and use of one code, uncounted."""
        if _SIX_DIGITS.fullmatch(code):
            secret = self.box.open(user.get("totpSecret"), user["_id"])
            step = matching_step(secret, code, self.clock()) if secret is not None else None
            if step is None:
                return False
            # Later than the last step used: a code seen over a shoulder, or replayed, is refused.
            result = await self.collection.update_one(
                {"_id": user["_id"], "twoFactorEnabled": True, "totpLastStep": {"$not": {"$gte": step}}},
                {"$set": {"totpLastStep": step}},
            )
            return result.modified_count == 1
        digest = recovery_hash(code)
        unused = {"_id": user["_id"], "twoFactorEnabled": True, "recoveryCodes": digest}
        result = await self.collection.update_one(unused, {"$pull": {"recoveryCodes": digest}})
        return result.modified_count == 1
