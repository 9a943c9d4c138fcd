"""The official OpenAI Python SDK through Warden's gateway (`warden serve --demo`).

Run by crates/warden/tests/gateway_sdk.rs with the packages pinned in
requirements-gateway.txt on PYTHONPATH, and:

  GATEWAY_URL        Warden's base URL (http://127.0.0.1:PORT)
  DEMO_APP_ID        the demo service client (role ml-engineer, scopes inference.invoke tools.call)
  DEMO_APP_SECRET    its secret

Each check prints PASS or FAIL; the script exits 1 when any failed and
prints "all checks passed" otherwise.
"""

import base64
import json
import os
import sys
import time
import traceback
import urllib.parse
import urllib.request

import openai

BASE = os.environ["GATEWAY_URL"].rstrip("/")
APP_ID = os.environ["DEMO_APP_ID"]
APP_SECRET = os.environ["DEMO_APP_SECRET"]
MESSAGES = [{"role": "user", "content": "Tell me something about gateways"}]

failures = []


def check(name):
    def run(fn):
        try:
            fn()
            print(f"PASS: {name}", flush=True)
        except Exception:  # noqa: BLE001 - every failure is reported, none stops the others
            failures.append(name)
            print(f"FAIL: {name}\n{traceback.format_exc()}", flush=True)
        return fn

    return run


def token(scope=None):
    """An access token for the demo app by OAuth client_credentials (client_secret_basic)."""
    form = {"grant_type": "client_credentials"}
    if scope is not None:
        form["scope"] = scope
    basic = base64.b64encode(f"{APP_ID}:{APP_SECRET}".encode()).decode()
    request = urllib.request.Request(
        f"{BASE}/oauth/token",
        data=urllib.parse.urlencode(form).encode(),
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["access_token"]


def client(api_key):
    # No retries: every status must be the gateway's first answer.
    return openai.OpenAI(base_url=f"{BASE}/v1", api_key=api_key, max_retries=0, timeout=60)


TOKEN = token()
AI = client(TOKEN)


@check("models.list through the gateway lists the demo models")
def _():
    ids = [m.id for m in AI.models.list()]
    assert ids == ["demo-small", "demo-large", "forbidden-model"], ids


@check("a chat completion reaches the upstream with the verified identity and without the token")
def _():
    raw = AI.chat.completions.with_raw_response.create(model="demo-small", messages=MESSAGES)
    assert raw.headers.get("x-demo-warden-subject") == f"svc:{APP_ID}", dict(raw.headers)
    assert raw.headers.get("x-demo-authorization") == "absent", dict(raw.headers)
    assert raw.headers.get("x-warden-request-id"), dict(raw.headers)
    completion = raw.parse()
    text = completion.choices[0].message.content
    assert text.startswith(f"Hello svc:{APP_ID}, this is demo-small"), text


@check("a streamed chat completion arrives chunk by chunk and adds up to the full reply")
def _():
    start = time.monotonic()
    stream = AI.chat.completions.create(model="demo-large", messages=MESSAGES, stream=True)
    arrivals, parts = [], []
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk", chunk
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - start)
            parts.append(chunk.choices[0].delta.content)
    text = "".join(parts)
    expected = f"Hello svc:{APP_ID}, this is demo-large answering through Warden. You said: Tell me something about gateways"
    assert text == expected, text
    assert len(parts) >= 10, parts
    # The upstream sends a word every 100 ms: chunks that arrive together
    # would mean the gateway buffered the stream.
    spread = arrivals[-1] - arrivals[0]
    assert spread >= 0.5, f"all {len(parts)} chunks arrived within {spread:.3f} s: {arrivals}"
    print(f"  {len(parts)} chunks over {spread:.2f} s: {text!r}")


@check("forbidden-model is refused with PermissionDeniedError (403, OpenAI-shaped, no reason given)")
def _():
    try:
        AI.chat.completions.create(model="forbidden-model", messages=MESSAGES)
    except openai.PermissionDeniedError as e:
        assert e.status_code == 403
        assert e.type == "permission_error" and e.code == "forbidden", e.body
        assert set(e.body) == {"message", "type", "param", "code"}, e.body
        assert "polic" not in json.dumps(e.body).lower(), e.body
        assert e.response.headers.get("x-warden-request-id")
        return
    raise AssertionError("forbidden-model answered: no policy denied it")


@check("a token without inference.invoke gets PermissionDeniedError insufficient_scope")
def _():
    try:
        client(token(scope="tools.call")).chat.completions.create(model="demo-small", messages=MESSAGES)
    except openai.PermissionDeniedError as e:
        assert e.status_code == 403
        assert e.code == "insufficient_scope", e.body
        assert "insufficient_scope" in e.response.headers.get("www-authenticate", "")
        return
    raise AssertionError("the call was allowed")


@check("an API key that is not a Warden token gets AuthenticationError (401)")
def _():
    try:
        client("sk-not-a-warden-token").chat.completions.create(model="demo-small", messages=MESSAGES)
    except openai.AuthenticationError as e:
        assert e.status_code == 401
        assert e.type == "authentication_error", e.body
        assert "invalid_token" in e.response.headers.get("www-authenticate", "")
        return
    raise AssertionError("the call was allowed")


if failures:
    print(f"{len(failures)} check(s) failed: {failures}")
    sys.exit(1)
print("all checks passed")
