"""A Datasette plugin for ``libtagger browse`` only: a 403 to every request that could write.

Datasette 0.65 has no write API, so a POST to a write endpoint of Datasette 1.0
(``/db/table/-/insert``, ``-/upsert``, ``-/update``, ``-/delete``, ``-/drop``) or to a table
reaches a view that fails an assertion: a 500 and a traceback in the server's log, though nothing
is written. This ASGI wrapper refuses such requests before Datasette routes them, so every client
gets the same clean answer whatever Datasette's version routes where.

Not a ``datasette`` entry point (:mod:`libtagger.integrations.datasette_plugin` is): only
:func:`libtagger.integrations.browse.serve` registers it, so a ``datasette`` someone runs on other
databases keeps its write plugins. Only Datasette imports this module: nothing in the core does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from datasette import hookimpl

#: HTTP methods that only read; any other is refused.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Send = Callable[[dict[str, Any]], Awaitable[None]]
Asgi = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Send], Awaitable[None]]


@hookimpl
def asgi_wrapper(datasette: Any) -> Callable[[Asgi], Asgi]:
    """Wrap Datasette's ASGI app in one that answers 403 to methods not in :data:`READ_METHODS`."""

    def wrap(app: Asgi) -> Asgi:
        async def read_only_app(scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                                send: Send) -> None:
            if scope["type"] == "http" and scope.get("method", "GET").upper() not in READ_METHODS:
                await _refuse(scope, send)
            else:
                await app(scope, receive, send)

        return read_only_app

    return wrap


async def _refuse(scope: dict[str, Any], send: Send) -> None:
    """Send a 403 in the shape of Datasette's JSON errors, naming the refused request."""
    from datasette.utils.asgi import Response

    request = f"{scope['method']} {scope.get('path', '')}"
    body = {"ok": False, "status": 403, "title": "Forbidden",
            "error": f"libtagger browse is read-only: {request} is not allowed"}
    headers = {"Allow": ", ".join(sorted(READ_METHODS))}
    await Response.json(body, status=403, headers=headers).asgi_send(send)
