"""The FastAPI application factory: state, security middleware, error pages, routers.

Security (issue 18): the token (when set) is required on every request, static files included,
as `Authorization: Bearer`, or once as `?token=` which sets an HttpOnly SameSite=Strict cookie;
on a loopback bind without a token, only loopback Host headers are accepted (no DNS rebinding);
writes are JSON POSTs from the same origin only (no cross-site form can make one); pages carry a
strict Content-Security-Policy (no inline script, nothing from elsewhere). The tree file is only
ever opened through escpro's read-only store reader.
"""

from __future__ import annotations

import hmac
from contextlib import asynccontextmanager
from urllib.parse import urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from escpro import __version__
from escpro.errors import EscproError
from escpro.store.db import StoreError
from escpro.ui.options import LOOPBACK_NAMES, NotFound, UiOptions
from escpro.ui.state import UiState, build_state, nav

COOKIE = "escpro_ui_token"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def _token_ok(request: Request, token: str) -> bool:
    auth = request.headers.get("authorization", "")
    given = auth[7:] if auth.lower().startswith("bearer ") else request.cookies.get(COOKIE, "")
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


def _add_security(app: FastAPI, opts: UiOptions) -> None:
    @app.middleware("http")
    async def guard(request: Request, call_next):
        if opts.token:
            q = request.query_params.get("token")
            if q is not None and hmac.compare_digest(q.encode(), opts.token.encode()):
                rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
                url = request.url.path + (f"?{urlencode(rest)}" if rest else "")
                resp: Response = RedirectResponse(url, status_code=303)
                resp.set_cookie(COOKIE, opts.token, httponly=True, samesite="strict")
                return resp
            if not _token_ok(request, opts.token):
                return JSONResponse({"error": "a valid token is required (?token=... once, or Authorization: Bearer)"},
                                    status_code=401)
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
                return JSONResponse({"error": "cross-origin request refused"}, status_code=403)
            if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
                return JSONResponse({"error": "send application/json"}, status_code=415)
        resp = await call_next(request)
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Frame-Options"] = "DENY"
        if request.url.path.startswith("/api/"):
            resp.headers["Cache-Control"] = "no-store"
        return resp

    if opts.loopback and not opts.token:
        hosts = [h for h in LOOPBACK_NAMES if not h.startswith("[")] + ["[::1]"]
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)


def _add_errors(app: FastAPI) -> None:
    @app.exception_handler(EscproError)
    async def escpro_error(request: Request, exc: EscproError):
        status = 503 if isinstance(exc, StoreError) else 404 if isinstance(exc, NotFound) else 400
        if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
            return JSONResponse({"error": str(exc)}, status_code=status)
        st: UiState = request.app.state.ui
        return st.templates.TemplateResponse(request, "error.html", {"message": str(exc), **nav(st)},
                                             status_code=status)


def create_app(opts: UiOptions, state: UiState | None = None) -> FastAPI:
    """The app for these options (tests call this with a TestClient; `escpro ui` serves it)."""
    from escpro.ui import views_eval, views_trees

    st = state or build_state(opts)
    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        if st.store is not None:
            st.store.close()

    app = FastAPI(title="escpro ui", version=__version__, docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.state.ui = st
    _add_security(app, opts)
    _add_errors(app)
    app.mount("/static", StaticFiles(packages=[("escpro.ui", "static")]), name="static")
    app.include_router(views_trees.router)
    app.include_router(views_eval.router)

    @app.get("/", include_in_schema=False)
    def index(request: Request):
        return st.templates.TemplateResponse(request, "index.html", {
            **nav(st), "db": opts.db, "pairs": opts.pairs,
            "study": st.study.describe() if st.study else None,
            "judgements": st.store.path if st.store else None})

    return app
