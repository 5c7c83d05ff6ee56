"""The real dashboard process over HTTP: its security headers, and whose address it believes.

The client address feeds the login rate limit and the journal. Behind no proxy (the default) a
forged X-Forwarded-For must change nothing; with DEPLOYEX_DASHBOARD_TRUST_PROXY=1 (behind a
proxy the operator runs) the forwarded address is the client's.
"""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from dashboards.auth import CSRF_FIELD
from tests.browser import dashboard_secrets, get, running_dashboard
from tests.deployex_service import write_config

pytestmark = pytest.mark.slow
ATTEMPTS = 5  # the documented limit: 5 login attempts per client per 5 minutes
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def failed_login(url: str, forwarded_for: str) -> int:
    """One wrong-password login, from a client that claims to be `forwarded_for`."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    headers = {"X-Forwarded-For": forwarded_for}
    with opener.open(urllib.request.Request(f"{url}/login", headers=headers), timeout=10) as page:
        token = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', page.read().decode()).group(1)
    form = urllib.parse.urlencode({CSRF_FIELD: token, "username": "admin", "password": "wrong"})
    request = urllib.request.Request(f"{url}/login", data=form.encode(), headers=headers)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.parametrize("trusted", [False, True])
def test_forwarded_addresses_count_only_when_the_proxy_is_trusted(
    trusted: bool, tmp_path: Path
) -> None:
    env = dashboard_secrets()
    if trusted:
        env["DEPLOYEX_DASHBOARD_TRUST_PROXY"] = "1"
    config = write_config(tmp_path, [])
    with running_dashboard(config, tmp_path, env) as dashboard:
        answers = [failed_login(dashboard.url, f"203.0.113.{n}") for n in range(ATTEMPTS + 1)]
        if trusted:  # six clients, one attempt each: nobody is over the limit
            assert 429 not in answers, answers
            same = [failed_login(dashboard.url, "203.0.113.99") for _ in range(ATTEMPTS + 1)]
            assert same[-1] == 429, same
        else:  # one client (127.0.0.1) whatever it claims: the sixth attempt is refused
            assert answers[-1] == 429 and 429 not in answers[:-1], answers


def test_every_kind_of_response_carries_the_security_headers(tmp_path: Path) -> None:
    config = write_config(tmp_path, [])
    with running_dashboard(config, tmp_path, dashboard_secrets()) as dashboard:
        for path in ("/login", "/health", "/applications", "/no-such-page"):
            _status, headers, _body = get(f"{dashboard.url}{path}")
            for name, value in SECURITY_HEADERS.items():
                assert headers.get(name) == value, (path, name, headers)
