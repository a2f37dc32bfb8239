"""The HTTP session the sync ccxt clients send through: requests, without its per-request merging.

ccxt hands `Session.request` everything a request needs (method, URL with the query, body bytes,
headers that already include the session's own, timeout, verify) and clears the cookie jar before
every call. `requests.Session.request` still merges cookies, params, auth, hooks, proxies and
environment settings into each one; on this machine that is ~0.5 ms per request (a third of it
`isinstance` checks against a typing Protocol, which CPython 3.11 recomputes every time), the
largest single cost of a replay bar after the exchange itself.

`ExchangeSession.request` builds the same `PreparedRequest` and sends it on the same transport
adapter (urllib3 pool, TLS, timeouts: all requests'/urllib3's own code), and falls back to the
full `requests.Session.request` for anything it does not handle itself: proxies, cookies, auth,
files, json, params, hooks, streaming, environment trust. Redirects are not followed: no exchange
API endpoint ccxt calls redirects, and re-sending a signed order to another address is the wrong
reaction to one. ccxt takes a 3xx answer for a success (it only checks >= 400), so a redirect is
raised as requests' `TooManyRedirects`, which ccxt turns into an `ExchangeError` naming the call.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import requests
from requests.models import PreparedRequest
from requests.structures import CaseInsensitiveDict


class ExchangeSession(requests.Session):
    """A `requests.Session` with a short path for ccxt's plain API calls (see the module doc)."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False  # ccxt's default for its own sessions (`requests_trust_env`)

    def request(  # type: ignore[override]  # the same signature, keywords as ccxt passes them
        self,
        method: str,
        url: Any,
        params: Any = None,
        data: Any = None,
        headers: Any = None,
        cookies: Any = None,
        files: Any = None,
        auth: Any = None,
        timeout: Any = None,
        allow_redirects: bool = True,
        proxies: Any = None,
        hooks: Any = None,
        stream: bool | None = None,
        verify: Any = None,
        cert: Any = None,
        json: Any = None,
    ) -> requests.Response:
        if not self._plain(params, cookies, files, auth, proxies, hooks, stream, cert, json):
            return super().request(
                method, url, params=params, data=data, headers=headers, cookies=cookies, files=files,
                auth=auth, timeout=timeout, allow_redirects=allow_redirects, proxies=proxies, hooks=hooks,
                stream=stream, verify=verify, cert=cert, json=json,
            )
        merged = CaseInsensitiveDict(self.headers)
        for name, value in (headers or {}).items():
            if value is None:  # requests' rule: a None header removes the session's one
                merged.pop(name, None)
            else:
                merged[name] = value
        prepared = PreparedRequest()
        prepared.prepare(method=method.upper(), url=url, headers=merged, data=data or None)
        adapter = self.get_adapter(url=str(prepared.url))
        start = time.perf_counter()
        response = adapter.send(
            prepared, stream=False, timeout=timeout, verify=self.verify if verify is None else verify,
            cert=None, proxies={},
        )
        response.elapsed = timedelta(seconds=time.perf_counter() - start)
        response.content  # noqa: B018 - read the body now: it returns the connection to the pool
        if response.is_redirect:
            raise requests.TooManyRedirects(
                f"{response.status_code} redirect to {response.headers.get('Location')!r} not followed: "
                "exchange API calls are never redirected", request=prepared, response=response)
        return response

    def _plain(self, params: Any, cookies: Any, files: Any, auth: Any, proxies: Any, hooks: Any,
               stream: bool | None, cert: Any, json: Any) -> bool:
        """True when the request needs none of what `requests.Session.request` merges in."""
        per_call = (params, cookies, files, auth, hooks, cert, json)
        session = (self.params, self.auth, self.cert, self.proxies, len(self.cookies), self.stream,
                   self.trust_env, any(self.hooks.values()))
        return not proxies and not stream and not any(per_call) and not any(session)
