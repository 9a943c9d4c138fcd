#!/usr/bin/env python3
"""Warden's DPoP (RFC 9449) against proofs built by joserfc (a JOSE
library no one here wrote), sent with requests.

Checks, against a live `warden serve` with a gateway route:

  - client_credentials with a proof: token_type DPoP, cnf.jkt = the
    RFC 7638 thumbprint joserfc computes for the client's key;
  - the bound token on the gateway route, the registry API and
    introspection, each with a proof for that request (ES256 and EdDSA
    keys);
  - refusals, each a 401 with a `DPoP` challenge and the RFC 9449 error:
    no proof, a replayed proof, another method, another URL, a stale
    `iat`, no `ath`, a proof by another key, the bound token sent as a
    Bearer token;
  - a client registered with --require-dpop without a proof: 400
    invalid_dpop_proof; a refresh with another key: 400
    invalid_dpop_proof, with the same key: a new bound token.

Inputs from the environment (secrets stay out of argv):

  DPOP_ISSUER          issuer URL, e.g. http://127.0.0.1:PORT
  DPOP_ROUTE           path of a GET gateway route, e.g. /v1/models
  DPOP_CLIENT_ID / DPOP_CLIENT_SECRET
                       a service client with client_credentials and
                       refresh_token, scopes incl. the route's and
                       warden.introspect
  DPOP_STRICT_ID / DPOP_STRICT_SECRET
                       a client created with --require-dpop and
                       client_credentials and refresh_token

Exit status 0 and "all checks passed" when every check passed; 1 with
`FAIL: <what>` on stderr at the first failure. Each HTTP request has a
timeout; nothing loops.
"""

import base64
import hashlib
import json
import os
import secrets
import sys
import time

TIMEOUT = 15  # seconds, per HTTP request


def fail(msg):
    print(f"dpop (python/joserfc): FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def ok(msg):
    print(f"  ok: {msg}", flush=True)


def env(name):
    value = os.environ.get(name)
    if not value:
        fail(f"environment variable {name} is not set")
    return value


def b64json(segment):
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def ath(token):
    digest = hashlib.sha256(token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class Prover:
    """A DPoP key pair and proofs made with joserfc."""

    def __init__(self, kind):
        from joserfc.jwk import ECKey, OKPKey

        if kind == "ES256":
            self.key = ECKey.generate_key("P-256")
        else:
            self.key = OKPKey.generate_key("Ed25519")
        self.alg = kind

    def thumbprint(self):
        return self.key.thumbprint()

    def proof(self, method, url, token=None, iat=None, with_ath=True, jti=None):
        from joserfc import jwt

        header = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.key.as_dict(private=False)}
        claims = {
            "jti": jti or secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(time.time()) if iat is None else iat,
        }
        if token is not None and with_ath:
            claims["ath"] = ath(token)
        return jwt.encode(header, claims, self.key, algorithms=[self.alg])


def main():
    import requests

    issuer = env("DPOP_ISSUER")
    route = issuer + env("DPOP_ROUTE")
    token_url = issuer + "/oauth/token"
    registry = issuer + "/api/v1/datasets"
    introspect = issuer + "/oauth/introspect"
    client = (env("DPOP_CLIENT_ID"), env("DPOP_CLIENT_SECRET"))
    strict = (env("DPOP_STRICT_ID"), env("DPOP_STRICT_SECRET"))
    http = requests.Session()
    http.trust_env = False

    def token_request(auth, proof, form):
        headers = {} if proof is None else {"DPoP": proof}
        return http.post(token_url, auth=auth, data=form, headers=headers, timeout=TIMEOUT)

    def call(method, url, scheme, token, proof):
        headers = {"Authorization": f"{scheme} {token}"}
        if proof is not None:
            headers["DPoP"] = proof
        return http.request(method, url, headers=headers, timeout=TIMEOUT)

    def refused(r, code, what):
        challenge = r.headers.get("WWW-Authenticate", "")
        check(r.status_code == 401, f"{what}: expected 401, got {r.status_code} {r.text}")
        check(r.json().get("error") == code, f"{what}: expected {code}, got {r.text}")
        check(r.headers.get("Cache-Control") == "no-store", f"{what}: no Cache-Control: no-store")
        check(
            challenge.startswith("DPoP ") and f'error="{code}"' in challenge,
            f"{what}: challenge {challenge!r}",
        )
        ok(f"{what}: 401 {code}")

    # -- binding at the token endpoint
    es = Prover("ES256")
    r = token_request(client, es.proof("POST", token_url), {"grant_type": "client_credentials"})
    check(r.status_code == 200, f"client_credentials with a proof: {r.status_code} {r.text}")
    body = r.json()
    check(body.get("token_type") == "DPoP", f"token_type: {body}")
    token = body["access_token"]
    cnf = b64json(token.split(".")[1]).get("cnf")
    check(cnf == {"jkt": es.thumbprint()}, f"cnf {cnf} is not joserfc's thumbprint {es.thumbprint()}")
    ok("client_credentials with an ES256 proof: token_type DPoP, cnf.jkt is joserfc's RFC 7638 thumbprint")

    # -- the bound token where it is meant to be used
    r = call("GET", route, "DPoP", token, es.proof("GET", route, token))
    check(r.status_code == 200, f"gateway with a proof: {r.status_code} {r.text}")
    ok("gateway route with the DPoP scheme and a proof: 200")
    r = call("GET", registry, "DPoP", token, es.proof("GET", registry, token))
    check(r.status_code == 200, f"registry API with a proof: {r.status_code} {r.text}")
    ok("registry API with a proof: 200")
    r = http.post(
        introspect,
        data={"token": token},
        headers={"Authorization": f"DPoP {token}", "DPoP": es.proof("POST", introspect, token)},
        timeout=TIMEOUT,
    )
    check(r.status_code == 200, f"introspection with a proof: {r.status_code} {r.text}")
    answer = r.json()
    check(
        answer.get("active") is True and answer.get("token_type") == "DPoP"
        and answer.get("cnf") == {"jkt": es.thumbprint()},
        f"introspection answer: {answer}",
    )
    ok("introspection by the bound token with a proof: token_type DPoP and its cnf")

    # -- refusals
    used = es.proof("GET", route, token)
    r = call("GET", route, "DPoP", token, used)
    check(r.status_code == 200, f"first use of a proof: {r.status_code} {r.text}")
    other = Prover("ES256")
    cases = [
        ("no proof", "DPoP", None, "invalid_dpop_proof"),
        ("replayed proof", "DPoP", used, "invalid_dpop_proof"),
        ("wrong method", "DPoP", es.proof("POST", route, token), "invalid_dpop_proof"),
        ("wrong URL", "DPoP", es.proof("GET", issuer + "/v1/elsewhere", token), "invalid_dpop_proof"),
        ("stale iat", "DPoP", es.proof("GET", route, token, iat=int(time.time()) - 3600), "invalid_dpop_proof"),
        ("missing ath", "DPoP", es.proof("GET", route, token, with_ath=False), "invalid_dpop_proof"),
        ("a different key", "DPoP", other.proof("GET", route, token), "invalid_dpop_proof"),
        ("bound token as Bearer", "Bearer", es.proof("GET", route, token), "invalid_token"),
    ]
    for what, scheme, proof, code in cases:
        refused(call("GET", route, scheme, token, proof), code, what)

    # -- a client that must use DPoP, and bound refresh tokens (EdDSA)
    form = {"grant_type": "client_credentials"}
    r = token_request(strict, None, form)
    check(
        r.status_code == 400 and r.json().get("error") == "invalid_dpop_proof",
        f"--require-dpop client without a proof: {r.status_code} {r.text}",
    )
    ok("--require-dpop client without a proof: 400 invalid_dpop_proof")
    ed = Prover("EdDSA")
    r = token_request(strict, ed.proof("POST", token_url), form)
    check(r.status_code == 200 and r.json().get("token_type") == "DPoP", f"EdDSA proof: {r.status_code} {r.text}")
    body = r.json()
    check("refresh_token" in body, f"no refresh token: {body}")
    r = call("GET", route, "DPoP", body["access_token"], ed.proof("GET", route, body["access_token"]))
    check(r.status_code == 200, f"gateway with an EdDSA proof: {r.status_code} {r.text}")
    ok("--require-dpop client with an EdDSA proof: bound token, accepted on the gateway")
    refresh = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    r = token_request(strict, Prover("EdDSA").proof("POST", token_url), refresh)
    check(
        r.status_code == 400 and r.json().get("error") == "invalid_dpop_proof",
        f"refresh with another key: {r.status_code} {r.text}",
    )
    ok("refresh with a different key: 400 invalid_dpop_proof")
    r = token_request(strict, ed.proof("POST", token_url), refresh)
    check(r.status_code == 200 and r.json().get("token_type") == "DPoP", f"refresh, same key: {r.status_code} {r.text}")
    cnf = b64json(r.json()["access_token"].split(".")[1]).get("cnf")
    check(cnf == {"jkt": ed.thumbprint()}, f"refreshed token cnf {cnf}")
    ok("refresh with the same key: a new token bound to it")

    print("dpop (python/joserfc): all checks passed", flush=True)


if __name__ == "__main__":
    main()
