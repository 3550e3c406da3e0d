"""The auth manager's routes, mounted by Airflow under /auth.

    GET /auth/login?next=URL   verify x-amzn-oidc-data, set Airflow's `_token`, go to `next`
    GET /auth/logout           drop `_token` and the ALB session, go to [alb_auth] logout_url

The load balancer must send /auth/* through its authenticate-oidc action: it then
overwrites any x-amzn-oidc-* header a client sent. A request that reaches the api-server
another way fails the signature or signer check.
"""

import logging
from urllib.parse import urlsplit

from airflow.api_fastapi.app import API_ROOT_PATH, get_auth_manager, get_cookie_path
from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.configuration import conf
from fastapi import FastAPI, Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from albauth.roles import NoRole
from albauth.token import TokenRejected, UnknownKeyId

log = logging.getLogger(__name__)
ALB_TOKEN_HEADER = "x-amzn-oidc-data"
# The ALB splits a large session cookie into up to four: NAME-0 ... NAME-3.
ALB_SESSION_COOKIE_PARTS = 4


def create_app() -> FastAPI:
    app = FastAPI(title="ALB single sign-on", description="Login through the ALB's authenticate-oidc.")
    app.add_api_route("/login", login, methods=["GET"], include_in_schema=False)
    app.add_api_route("/logout", logout, methods=["GET"], include_in_schema=False)
    return app


def login(request: Request, next: str | None = None) -> Response:
    manager = get_auth_manager()
    if next is not None and not is_safe_next(next, request):
        log.warning("ALB login refused: unsafe next URL %r", next)
        return PlainTextResponse("login refused: the next URL leaves this site\n", status_code=400)
    alb_token = request.headers.get(ALB_TOKEN_HEADER)
    if not alb_token:
        return PlainTextResponse(
            f"login refused: no {ALB_TOKEN_HEADER} header; sign in through the load balancer\n",
            status_code=401,
        )
    try:
        user = manager.user_from_alb_token(alb_token)
    except UnknownKeyId as error:
        store = manager.settings.key_store.url
        log.error("ALB login refused: %s, not in %s; run `alb-keys fill --store %s`", error, store, store)
        return PlainTextResponse(f"login refused: {error}\n", status_code=401)
    except (TokenRejected, NoRole) as error:
        status = 403 if isinstance(error, NoRole) else 401
        log.warning("ALB login refused: %s", error)
        return PlainTextResponse(f"login refused: {error}\n", status_code=status)
    log.info("ALB login: %s as %s", user.username, user.role.title)
    response = RedirectResponse(next or API_ROOT_PATH or "/", status_code=303)
    response.set_cookie(
        COOKIE_NAME_JWT_TOKEN,
        manager.generate_jwt(user),
        path=get_cookie_path(),
        secure=_secure(request),
        httponly=True,
        samesite="lax",
    )
    return response


def logout(request: Request) -> Response:
    settings = get_auth_manager().settings
    if settings.logout_url:
        response: Response = RedirectResponse(settings.logout_url, status_code=303)
    else:
        response = PlainTextResponse("Signed out.\n")
    secure = _secure(request)
    response.delete_cookie(COOKIE_NAME_JWT_TOKEN, path=get_cookie_path(), secure=secure, httponly=True)
    for part in range(ALB_SESSION_COOKIE_PARTS):
        response.delete_cookie(f"{settings.session_cookie_name}-{part}", path="/", secure=secure)
    return response


def is_safe_next(target: str, request: Request) -> bool:
    """Only a path on this site, or an absolute http(s) URL of this host or [api] base_url."""
    if any(char in target for char in "\\\r\n\t") or target.startswith("//"):
        return False
    parts = urlsplit(target)
    if not parts.scheme and not parts.netloc:
        return target.startswith("/")
    if parts.scheme not in ("http", "https"):
        return False
    hosts = {request.url.netloc}
    if base_url := conf.get("api", "base_url", fallback=""):
        hosts.add(urlsplit(base_url).netloc)
    return parts.netloc in hosts


def _secure(request: Request) -> bool:
    # Behind the ALB the api-server speaks plain HTTP; the browser's side is HTTPS.
    forwarded = request.headers.get("x-forwarded-proto", "")
    base_url = conf.get("api", "base_url", fallback="")
    return "https" in (request.url.scheme, forwarded) or base_url.startswith("https")
