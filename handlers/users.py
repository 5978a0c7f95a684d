"""The /users endpoints of the task-board app."""

from tornado.httputil import HTTPInputError, parse_body_arguments

from handlers import openapi_examples as ex
from handlers.base import BaseHandler
from handlers.documented import either, operation
from models import photos as photo_model
from models import users as user_model
from models.common import parse_object_id
from models.schemas import responses
from models.schemas import users as schemas
from models.schemas.paging import page_of
from models.schemas.responses import ID, NULLABLE_STRING, USER, closed
from services.errors import ApiError, field_error, not_found
from services.validation import trim_strings, validate, validator_for

MULTIPART = "multipart/form-data"
# Room for the form's boundaries, part headers and text fields around a photo of MAX_PHOTO_BYTES.
FORM_OVERHEAD = 64 * 1024
# A form cannot send null: an empty text part for these means "remove it", as null does in JSON.
NULLABLE_FORM_FIELDS = ("username", "phone")

USER_ID = ("userId",)  # the path parameter of /users/{userId}/...
FAVORITES = closed({"favoriteBoards": {"type": "array", "items": {"type": "string"}, "maxItems": 500}})

# The same answers as the published task-board web app reads them (TOTASK_WEB_COMPAT=true): bare arrays.
WEB_FAVOURITE = closed({"id": {"type": "string"}})

WEB_FAVOURITES = {"type": "array", "items": WEB_FAVOURITE, "maxItems": 500}


FAVOURITES_ANSWER = either(FAVORITES, WEB_FAVOURITES)


class UsersBaseHandler(BaseHandler):
    """Who may act on whom under /users."""

    def require_admin(self) -> None:
        """403 unless the caller is an admin (the rule, with its CWE, is Users.require_admin)."""
        self.services.users.require_admin(self.current_user)

    async def target_user(self, raw_id: str) -> dict:
        """The user a path names, when the caller is that user or an admin: else 403; malformed or unknown 404
        (the rule, with its CWE, is Users.target_for; a malformed id is a 404 before it is checked)."""
        return await self.services.users.target_for(self.current_user, self.path_id(raw_id, "User"))

    def send_user(self, user: dict, status: int = 200) -> None:
        self.send_json(self.user_view(user), status)

    @property
    def web_app(self) -> bool:
        """TOTASK_WEB_COMPAT: answer in the shapes the published task-board web app reads (models/users.py)."""
        return self.config.totask_web_compat


USER_PAGE = page_of(USER)


class UsersHandler(UsersBaseHandler):
    """GET /users (list) and POST /users (create), admins only."""

    openapi = {
        "post": operation(
            "Create a user (admin)",
            "users",
            201,
            responses.USER,
            body=schemas.CREATE,
            errors=(403,),
            examples={
                "request": {
                    "name": "Ada Obi",
                    "email": "ada@example.com",
                    "password": ex.PASSWORD,
                    "role": "admin",
                    "username": "ada.obi",
                },
                "response": {
                    **ex.USER,
                    "name": "Ada Obi",
                    "firstName": "Ada",
                    "lastName": "Obi",
                    "email": "ada@example.com",
                    "phone": None,
                    "username": "ada.obi",
                    "role": "admin",
                },
            },
        ),
        "get": operation(
            "List users (admin)",
            "users",
            200,
            USER_PAGE,
            query=schemas.LIST_QUERY,
            errors=(403,),
            examples={
                "response": {"results": [ex.VERIFIED_USER], "page": 1, "limit": 10, "totalPages": 1, "totalResults": 1}
            },
        ),
    }

    async def get(self) -> None:
        self.require_admin()
        page = await self.services.users.list_page(self.query(schemas.LIST_QUERY))
        self.send_page(page, self.user_view)

    async def post(self) -> None:
        self.require_admin()
        self.send_user(await self.services.users.add(self.json_body(schemas.CREATE)), status=201)


def current_user_operation(examples=None) -> dict:
    """GET /users/user: the caller; signed out, null (the web app's route guard reads it), never a 401 unless an
    Authorization header fails."""
    op = operation(
        "The caller. With no Authorization header and no live session cookie: 200 null (a stale cookie is "
        "cleared); with TOTASK_WEB_COMPAT=true that answer is 200 with an empty body instead, as the task-board web "
        "app's own server sent it. A failing Authorization header: 401",
        "users",
        200,
        {
            "oneOf": [
                {"title": "Signed in", **responses.USER},
                {"title": "Signed out (TOTASK_WEB_COMPAT=true: an empty body instead)", "type": "null"},
            ]
        },
        examples=examples,
    )
    op["security"] = [{}, *op["security"]]  # {}: no credentials needed (the answer is then null)
    return op


class CurrentUserHandler(UsersBaseHandler):
    """GET /users/user: the caller. Signed out (no Authorization header, no live session cookie) it is 200 with
    the body null; with TOTASK_WEB_COMPAT, 200 with an empty body, as the web app's own server answered."""

    openapi = {
        "get": current_user_operation(
            examples={
                "response": {
                    "signedIn": ("Signed in", ex.VERIFIED_USER),
                    "signedOut": (
                        "Signed out: no Authorization header and no live session "
                        "cookie (TOTASK_WEB_COMPAT=true: an empty body)",
                        None,
                    ),
                }
            }
        ),
    }

    # get() authenticates: an Authorization header that fails is still a 401 (token clients refresh on it).
    public = True

    async def get(self) -> None:
        user = await self.caller_or_none()
        if user is not None:
            self.send_user(user)
        elif self.web_app:
            # Express's res.send(null), what the app's server sent: axios reads the empty body as "", so the
            # route guard's user.id is undefined; JSON null would make it throw on null.id and blank the page.
            self.clear_header("Content-Type")
            self.finish()
        else:
            self.send_json(None)


class UserHandler(UsersBaseHandler):
    """GET, PUT / PATCH (JSON or multipart with a photo), POST / DELETE (delete) /users/:userId."""

    openapi = {
        "get": operation(
            "A user (self or admin)",
            "users",
            200,
            responses.USER,
            path=USER_ID,
            errors=(403,),
            examples={"response": ex.VERIFIED_USER},
        ),
        "put": operation(
            "Update a user (self or admin); JSON or multipart with a photo `file`",
            "users",
            200,
            responses.USER,
            path=USER_ID,
            body=schemas.UPDATE,
            form=schemas.UPDATE_FORM,
            errors=(403, 429),
            examples={
                "request": {"name": "Mark E. Essien", "username": "mark.essien"},
                "response": {**ex.VERIFIED_USER, "name": "Mark E. Essien", "lastName": "E. Essien"},
            },
        ),
        "patch": operation(
            "Update a user (same as PUT)",
            "users",
            200,
            responses.USER,
            path=USER_ID,
            body=schemas.UPDATE,
            form=schemas.UPDATE_FORM,
            errors=(403, 429),
            examples={
                "request": {"email": "mark@example.com", "currentPassword": ex.PASSWORD},
                "response": {**ex.VERIFIED_USER, "email": "mark@example.com", "isEmailVerified": False},
            },
        ),
        "post": operation(
            "Delete a user (self with password, or admin)",
            "users",
            204,
            path=USER_ID,
            body=schemas.DELETE,
            body_required=False,
            errors=(403, 429),
            examples={"request": {"password": ex.PASSWORD}},
        ),
        "delete": operation(
            "Delete a user (same as POST)",
            "users",
            204,
            path=USER_ID,
            body=schemas.DELETE,
            body_required=False,
            errors=(403, 429),
            examples={"request": {"password": ex.PASSWORD}},
        ),
    }

    def body_limit(self) -> int:
        if self.request.method in ("PUT", "PATCH") and self.media_type() == MULTIPART:
            return self.config.max_photo_bytes + FORM_OVERHEAD
        return super().body_limit()

    async def get(self, raw_id: str) -> None:
        self.send_user(await self.target_user(raw_id))

    async def put(self, raw_id: str) -> None:
        user = await self.target_user(raw_id)
        fields, photo = self.update_body()
        self.send_user(
            await self.services.users.update(
                user,
                fields,
                actor=self.current_user,
                session_id=self.session_id,
                access_jti=self.current_jti,
                photo=photo,
                address=self.client_address(),
            )
        )

    patch = put

    async def post(self, raw_id: str) -> None:
        user = await self.services.users.deletion_target(self.current_user, self.path_id(raw_id, "User"))
        password = self.json_body(schemas.DELETE).get("password")
        await self.services.users.delete(
            user, actor=self.current_user, password=password, address=self.client_address()
        )
        self.no_content()

    delete = post

    def update_body(self) -> tuple:
        """(fields, photo bytes or None) from a JSON body or a multipart form; both go through schemas.UPDATE."""
        if self.media_type() != MULTIPART:
            return self.json_body(schemas.UPDATE), None
        fields, photo = parse_form(self.request.headers["Content-Type"], self.raw_body())
        self.release_body()
        update = validator_for(schemas.UPDATE)
        fields = trim_strings(fields, update)
        for name in NULLABLE_FORM_FIELDS:
            if fields.get(name) == "":
                fields[name] = None
        return validate(update, fields), photo


class FavouritesBaseHandler(UsersBaseHandler):
    """What the /users favourites endpoints share: the board a body names, and the list as the answer."""

    def board_id(self) -> str:
        return self.json_body(schemas.BOARD)["boardId"]

    def send_favourites(self, user: dict) -> None:
        self.send_json(user_model.favourites_answer(user, self.web_app))


class FavouritesHandler(FavouritesBaseHandler):
    """GET /users/getFav: the caller's favourite boards."""

    openapi = {
        "get": operation(
            "The caller's favourite boards (shape: TOTASK_WEB_COMPAT)",
            "users",
            200,
            FAVOURITES_ANSWER,
            examples={"response": ex.shapes(ex.FAVOURITES, ex.web_favourites(ex.FAVOURITES))},
        ),
    }

    async def get(self) -> None:
        self.send_favourites(self.current_user)


class AddFavouriteHandler(FavouritesBaseHandler):
    """PUT /users/addToFav: add a board to the caller's favourites."""

    openapi = {
        "put": operation(
            "Add a favourite board (shape: TOTASK_WEB_COMPAT; the web app's is the board added)",
            "users",
            200,
            either(FAVORITES, WEB_FAVOURITE),
            body=schemas.BOARD,
            examples={
                "request": {"boardId": "roadmap-2026"},
                "response": ex.shapes(ex.FAVOURITES, {"id": "roadmap-2026"}),
            },
        ),
    }

    async def put(self) -> None:
        board_id = self.board_id()
        user = await self.services.favourites.add(self.current_user["_id"], board_id)
        self.send_json(user_model.added_favourite_answer(user, board_id, self.web_app))


class RemoveFavouriteHandler(FavouritesBaseHandler):
    """PUT /users/removeFromFav: remove a board from the caller's favourites."""

    openapi = {
        "put": operation(
            "Remove a favourite board (shape: TOTASK_WEB_COMPAT)",
            "users",
            200,
            FAVOURITES_ANSWER,
            body=schemas.BOARD,
            examples={
                "request": {"boardId": "roadmap-2026"},
                "response": ex.shapes({"favoriteBoards": ["board-42"]}, [{"id": "board-42"}]),
            },
        ),
    }

    async def put(self) -> None:
        board_id = self.board_id()
        self.send_favourites(await self.services.favourites.remove(self.current_user["_id"], board_id))


BRIEF_USER = closed(
    {
        "id": ID,
        "name": {"type": "string"},
        "email": {"type": "string"},
        "username": NULLABLE_STRING,
        "profilePhotoUrl": {**NULLABLE_STRING, "format": "uri"},
    }
)

BRIEF_USERS = closed({"results": {"type": "array", "items": BRIEF_USER}})

WEB_BRIEF_USERS = {"type": "array", "items": BRIEF_USER}


class SearchHandler(UsersBaseHandler):
    """GET /users/getUsers: find people by part of their email."""

    openapi = {
        "get": operation(
            "Search verified users by email prefix (shape: TOTASK_WEB_COMPAT)",
            "users",
            200,
            either(BRIEF_USERS, WEB_BRIEF_USERS),
            query=schemas.SEARCH_QUERY,
            errors=(429,),
            examples={"response": ex.shapes({"results": [ex.SEARCH_RESULT]}, [ex.SEARCH_RESULT])},
        ),
    }

    async def get(self) -> None:
        query = self.query(schemas.SEARCH_QUERY)
        users = await self.services.users.search_by_email(
            query["email"], query.get("limit", 5), self.current_user["_id"]
        )
        self.send_json(user_model.search_answer(users, self.config.app_url, self.web_app))


MONTHLY_SIGNUPS = closed(
    {
        "results": {
            "type": "array",
            "items": closed(
                {
                    "year": {"type": "integer"},
                    "month": {"type": "integer", "minimum": 1, "maximum": 12},
                    "monthName": {"type": "string"},
                    "count": {"type": "integer", "minimum": 0},
                }
            ),
        }
    }
)

WEB_MONTHLY_SIGNUPS = {
    "type": "array",
    "items": closed(
        {
            "month": {"type": "string", "enum": list(user_model.MONTH_NAMES)},
            "year": {"type": "integer"},
            "count": {"type": "integer", "minimum": 0},
        }
    ),
}


class SignupsByMonthHandler(UsersBaseHandler):
    openapi = {
        "get": operation(
            "Sign-ups per month, admin (shape: TOTASK_WEB_COMPAT)",
            "users",
            200,
            either(MONTHLY_SIGNUPS, WEB_MONTHLY_SIGNUPS),
            query=schemas.BY_MONTH_QUERY,
            errors=(403,),
            examples={
                "response": ex.shapes(
                    {"results": ex.SIGNUPS},
                    [{"month": row["monthName"], "year": row["year"], "count": row["count"]} for row in ex.SIGNUPS],
                )
            },
        ),
    }

    async def get(self) -> None:
        self.require_admin()
        query = self.query(schemas.BY_MONTH_QUERY)
        rows = await self.services.signups.by_month(query.get("from"), query.get("to"))
        self.send_json(user_model.signups_answer(rows, self.web_app))


class DeletePhotoHandler(UsersBaseHandler):
    openapi = {
        "put": operation(
            "Remove a profile photo (self or admin)",
            "users",
            200,
            responses.USER,
            path=USER_ID,
            errors=(403,),
            examples={"response": {**ex.VERIFIED_USER, "profilePhotoUrl": None}},
        ),
    }

    async def put(self, raw_id: str) -> None:
        user = await self.target_user(raw_id)
        self.send_user(await self.services.users.remove_photo(user["_id"]))


def photo_operation(user_id: tuple) -> dict:
    """GET /users/{userId}/photo: public with `v` (an <img src> sends no token), else a token of self or an admin."""
    op = operation(
        "A profile photo: with `v` (from profilePhotoUrl) public and cacheable for good, a wrong or outdated `v` "
        "a 404; without `v` the current photo, for the user or an admin",
        "users",
        200,
        path=user_id,
        query=schemas.PHOTO_QUERY,
        errors=(403,),
        ok_content={
            t: {"schema": {"type": "string", "contentEncoding": "binary"}} for t in ("image/jpeg", "image/png")
        },
        ok_headers={
            "ETag": {"schema": {"type": "string"}},
            "Cache-Control": {
                "schema": {"type": "string"},
                "description": "with v: public, max-age=31536000, immutable; without: private, no-cache",
            },
        },
    )
    op["security"] = [{}, *op["security"]]  # {}: no credentials needed (with v)
    op["responses"]["304"] = {"description": "Not modified: If-None-Match named the ETag"}
    return op


class PhotoHandler(UsersBaseHandler):
    """GET /users/:userId/photo: public with the photo's version (?v=), else the current one for self or admin."""

    openapi = {
        "get": photo_operation(USER_ID),
    }

    # The versioned URL is an <img src>, which sends no token; get() authenticates when there is no v.
    public = True

    async def get(self, raw_id: str) -> None:
        query = self.query(schemas.PHOTO_QUERY)
        size = query.get("size", photo_model.LARGEST)
        if "v" in query:
            user_id = parse_object_id(raw_id)
            # The version is the capability: unguessable, checked in constant time, so no token (CWE-639).
            photo = await self.services.users.published_photo(user_id, query["v"], size) if user_id else None
            cache_control = photo_model.PUBLIC_CACHE
            # An <img> of the web app's origin loads it: said outright, so no site-wide same-origin policy
            # (or an app under Cross-Origin-Embedder-Policy) breaks the avatar.
            self.set_header("Cross-Origin-Resource-Policy", "cross-origin")
        else:
            await self.authenticate()
            user = await self.target_user(raw_id)
            photo = await self.services.photos.current(user["_id"], size)
            cache_control = photo_model.CURRENT_CACHE
        if photo is None:
            raise not_found("No photo")
        self.set_header("ETag", photo["etag"])
        self.set_header("Cache-Control", cache_control)
        if self.check_etag_header():
            self.set_status(304)
            self.finish()
            return
        self.set_header("Content-Type", photo["contentType"])
        self.finish(photo["data"])


def parse_form(content_type: str, raw: bytes) -> tuple:
    """A multipart form's text fields (as strings) and its one optional `file`; 400 when malformed."""
    arguments, files = {}, {}
    try:
        parse_body_arguments(content_type, raw, arguments, files)
        fields = {name: [v.decode("utf-8") for v in values] for name, values in arguments.items()}
    except (HTTPInputError, UnicodeDecodeError):
        raise ApiError(400, "Malformed multipart body") from None
    fields = {name: values[0] if len(values) == 1 else values for name, values in fields.items()}
    if fields.get("file") == "":
        del fields["file"]  # what a browser sends for a file input left empty
    extra = [name for name in files if name != "file"]
    if extra:
        raise field_error(extra[0], "is not allowed")
    uploads = files.get("file", [])
    if len(uploads) > 1:
        raise field_error("file", "must be a single file")
    return fields, uploads[0].body if uploads else None
