#!/usr/bin/env python3
"""Warden's token service against Authlib (an OAuth client no one here
wrote), with the tokens verified by PyJWT through the served JWKS.

Two modes:

  interop.py keygen DIR   writes an Ed25519 and a P-256 key for
                          private_key_jwt: DIR/{eddsa,es256}.pem (private,
                          mode 0600) and DIR/{eddsa,es256}.jwks.json (public,
                          for `warden client create --auth private_key_jwt
                          --jwks FILE`).
  interop.py run          runs every check against a live `warden serve`.

`run` reads its inputs from the environment (secrets stay out of argv):

  INTEROP_ISSUER           issuer URL, e.g. http://127.0.0.1:PORT
  INTEROP_AUDIENCE         audience the clients registered, e.g. inference
  INTEROP_SERVICE_CLIENT_ID / INTEROP_SERVICE_CLIENT_SECRET
                           a service client with client_credentials and
                           refresh_token, scopes "inference.invoke training.run"
  INTEROP_EDDSA_CLIENT_ID  a client registered with DIR/eddsa.jwks.json
  INTEROP_ES256_CLIENT_ID  a client registered with DIR/es256.jwks.json
  INTEROP_KEY_DIR          DIR from keygen

Exit status 0 when every check passed; 1 with `FAIL: <what>` on stderr
at the first failure. Each HTTP request has a timeout; nothing loops.
"""

import base64
import json
import os
import sys
from pathlib import Path

TIMEOUT = 15  # seconds, per HTTP request
SCOPE = "inference.invoke"
ACCESS_TOKEN_ALGS = ["EdDSA", "ES256", "ES384", "RS256", "PS256"]


def fail(msg):
    print(f"interop (python/authlib): FAIL: {msg}", file=sys.stderr)
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


# --------------------------------------------------------------------------
# keygen


def keygen(out_dir):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from joserfc.jwk import ECKey, OKPKey

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keys = [
        ("eddsa", ed25519.Ed25519PrivateKey.generate(), OKPKey, "EdDSA"),
        ("es256", ec.generate_private_key(ec.SECP256R1()), ECKey, "ES256"),
    ]
    for name, private, cls, alg in keys:
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        pem_path = out / f"{name}.pem"
        fd = os.open(pem_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        key = cls.import_key(pem)
        public = key.as_dict(private=False)
        check("d" not in public, "the public JWK holds a private member")
        public["kid"] = key.thumbprint()
        public["alg"] = alg
        public["use"] = "sig"
        (out / f"{name}.jwks.json").write_text(json.dumps({"keys": [public]}, indent=2) + "\n")
    print(f"wrote eddsa and es256 keys to {out}")


# --------------------------------------------------------------------------
# run


class Checker:
    def __init__(self):
        import jwt
        import requests

        self.jwt = jwt
        self.requests = requests
        self.issuer = env("INTEROP_ISSUER")
        self.audience = env("INTEROP_AUDIENCE")

        r = requests.get(f"{self.issuer}/.well-known/oauth-authorization-server", timeout=TIMEOUT)
        check(r.status_code == 200, f"metadata: HTTP {r.status_code}")
        meta = r.json()
        check(meta.get("issuer") == self.issuer, f"metadata issuer {meta.get('issuer')!r} != {self.issuer!r}")
        for field in ("token_endpoint", "jwks_uri", "introspection_endpoint", "revocation_endpoint"):
            check(isinstance(meta.get(field), str), f"metadata has no {field}")
        methods = meta.get("token_endpoint_auth_methods_supported", [])
        for m in ("client_secret_basic", "client_secret_post", "private_key_jwt"):
            check(m in methods, f"metadata token_endpoint_auth_methods_supported lacks {m}: {methods}")
        self.meta = meta
        self.token_endpoint = meta["token_endpoint"]
        self.algs = [a for a in meta.get("access_token_signing_alg_values_supported", ACCESS_TOKEN_ALGS) if a in ACCESS_TOKEN_ALGS]
        check(self.algs, "metadata lists no asymmetric access-token algorithm")
        self.jwks = jwt.PyJWKClient(meta["jwks_uri"], timeout=TIMEOUT)
        ok(f"RFC 8414 metadata of {self.issuer}")

    def session(self, client_id, secret_or_key, method, scope=SCOPE):
        from authlib.integrations.requests_client import OAuth2Session

        s = OAuth2Session(
            client_id,
            secret_or_key,
            token_endpoint_auth_method=method,
            revocation_endpoint_auth_method=method,
            scope=scope,
            default_timeout=TIMEOUT,
        )
        s.sent = []  # every response, with .request, for inspection and replay
        s.hooks["response"].append(lambda r, *args, **kwargs: s.sent.append(r))
        return s

    def verify(self, token, sub, client_id, scope=SCOPE):
        """PyJWT verifies an access token with the key fetched from jwks_uri."""
        jwt = self.jwt
        header = jwt.get_unverified_header(token)
        check(header.get("typ") in ("at+jwt", "application/at+jwt"), f"access token typ is {header.get('typ')!r}, not at+jwt")
        check(header.get("alg") in self.algs, f"access token alg {header.get('alg')!r} not advertised")
        key = self.jwks.get_signing_key_from_jwt(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algs,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "nbf", "iss", "sub", "aud", "jti"]},
            )
        except jwt.PyJWTError as e:
            fail(f"PyJWT rejected the access token for {sub}: {e!r}")
        check(claims["sub"] == sub, f"sub {claims['sub']!r} != {sub!r}")
        check(claims.get("client_id") == client_id, f"client_id {claims.get('client_id')!r} != {client_id!r}")
        check(claims.get("scope") == scope, f"scope {claims.get('scope')!r} != {scope!r}")
        check(claims["exp"] > claims["iat"], "exp not after iat")
        # The check is real: a token with a flipped signature bit fails.
        head, payload, sig = token.split(".")
        flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
        try:
            jwt.decode(f"{head}.{payload}.{flipped}", key, algorithms=self.algs, audience=self.audience, issuer=self.issuer)
        except jwt.InvalidSignatureError:
            pass
        else:
            fail("PyJWT accepted an access token with a tampered signature")
        return claims

    def expect_oauth_error(self, fn, error, what):
        from authlib.integrations.base_client import OAuthError

        try:
            fn()
        except OAuthError as e:
            check(e.error == error, f"{what}: error {e.error!r} ({e.description}), expected {error!r}")
            return e
        fail(f"{what}: succeeded, expected {error!r}")

    # -- client_secret_basic / client_secret_post ----------------------------

    def secret_clients(self):
        cid = env("INTEROP_SERVICE_CLIENT_ID")
        secret = env("INTEROP_SERVICE_CLIENT_SECRET")

        s = self.session(cid, secret, "client_secret_basic")
        tok = s.fetch_token(self.token_endpoint, grant_type="client_credentials", audience=self.audience)
        req = s.sent[-1].request
        check(req.headers.get("Authorization", "").startswith("Basic "), "authlib did not send HTTP Basic")
        check("client_secret" not in (req.body or ""), "client_secret_basic sent the secret in the body")
        check(str(tok.get("token_type", "")).lower() == "bearer", f"token_type {tok.get('token_type')!r}")
        check(isinstance(tok.get("expires_in"), int) and tok["expires_in"] > 0, f"expires_in {tok.get('expires_in')!r}")
        check(tok.get("scope") == SCOPE, f"granted scope {tok.get('scope')!r} != {SCOPE!r}")
        check(isinstance(tok.get("refresh_token"), str), "no refresh_token for a client with the refresh_token grant")
        self.verify(tok["access_token"], f"svc:{cid}", cid)
        ok("client_credentials with client_secret_basic; PyJWT verifies the token via jwks_uri")

        # Refresh with authlib: a new access token and a rotated refresh token.
        old_rt = tok["refresh_token"]
        new = s.refresh_token(self.token_endpoint, refresh_token=old_rt)
        check(new.get("refresh_token") and new["refresh_token"] != old_rt, "refresh token was not rotated")
        self.verify(new["access_token"], f"svc:{cid}", cid)
        ok("refresh_token grant with client_secret_basic")

        # Introspection and revocation with authlib (RFC 7662, RFC 7009).
        endpoint_i = self.meta["introspection_endpoint"]
        r = s.introspect_token(endpoint_i, token=new["access_token"], token_type_hint="access_token")
        check(r.status_code == 200, f"introspection: HTTP {r.status_code} {r.text}")
        info = r.json()
        check(info.get("active") is True, f"introspection of a live token: {info}")
        check(info.get("sub") == f"svc:{cid}" and info.get("client_id") == cid, f"introspection: {info}")
        r = s.revoke_token(self.meta["revocation_endpoint"], token=new["access_token"], token_type_hint="access_token")
        check(r.status_code == 200, f"revocation: HTTP {r.status_code} {r.text}")
        r = s.introspect_token(endpoint_i, token=new["access_token"])
        check(r.status_code == 200 and r.json() == {"active": False}, f"introspection after revocation: {r.status_code} {r.text}")
        ok("introspection and revocation with client_secret_basic")

        s = self.session(cid, secret, "client_secret_post")
        tok = s.fetch_token(self.token_endpoint, grant_type="client_credentials", audience=self.audience)
        req = s.sent[-1].request
        check("Authorization" not in req.headers, "client_secret_post sent an Authorization header")
        check("client_secret=" in (req.body or ""), "client_secret_post did not send the secret in the body")
        self.verify(tok["access_token"], f"svc:{cid}", cid)
        ok("client_credentials with client_secret_post")

        # Errors come back as RFC 6749 §5.2 bodies that authlib understands.
        s = self.session(cid, secret, "client_secret_basic", scope="no.such.scope")
        self.expect_oauth_error(
            lambda: s.fetch_token(self.token_endpoint, grant_type="client_credentials"), "invalid_scope", "unknown scope"
        )
        s = self.session(cid, secret, "client_secret_basic")
        self.expect_oauth_error(
            lambda: s.fetch_token(self.token_endpoint, grant_type="client_credentials", audience="not-registered"),
            "invalid_target",
            "unregistered audience",
        )
        s = self.session(cid, secret + "x", "client_secret_basic")
        self.expect_oauth_error(
            lambda: s.fetch_token(self.token_endpoint, grant_type="client_credentials"), "invalid_client", "wrong secret"
        )
        resp = s.sent[-1]
        check(resp.status_code == 401, f"wrong secret with HTTP Basic: HTTP {resp.status_code}, expected 401")
        check(
            resp.headers.get("WWW-Authenticate", "").lower().startswith("basic"),
            f"401 without a Basic WWW-Authenticate challenge: {resp.headers.get('WWW-Authenticate')!r}",
        )
        ok("invalid_scope, invalid_target and invalid_client (401 + WWW-Authenticate) reach authlib as OAuthError")

    # -- private_key_jwt -----------------------------------------------------

    def private_key_jwt(self, name, alg, key_cls, lifetime_check):
        from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign

        class ShortLivedPrivateKeyJWT(PrivateKeyJWT):
            """Authlib's PrivateKeyJWT with a 60 s assertion lifetime.

            Authlib signs assertions that live an hour by default and its
            PrivateKeyJWT has no lifetime option; Warden accepts at most
            `oauth.assertion_max_ttl` (300 s), since it must remember every
            assertion's jti until the assertion expires (RFC 7523 §3 item 7).
            This override calls authlib's own signer with expires_in; it is
            client configuration, not a protocol change.
            """

            def sign(self, auth, token_endpoint):
                return private_key_jwt_sign(
                    auth.client_secret,
                    client_id=auth.client_id,
                    token_endpoint=token_endpoint,
                    alg=self.alg,
                    header=self.headers,
                    expires_in=60,
                )

        cid = env(f"INTEROP_{name.upper()}_CLIENT_ID")
        key_dir = Path(env("INTEROP_KEY_DIR"))
        key = key_cls.import_key((key_dir / f"{name}.pem").read_bytes())

        def session(auth):
            s = self.session(cid, key, "private_key_jwt")
            s.register_client_auth_method(auth)
            return s

        if lifetime_check:
            # Authlib out of the box: an assertion valid for 3600 s is refused.
            s = session(PrivateKeyJWT(self.token_endpoint, alg=alg))
            self.expect_oauth_error(
                lambda: s.fetch_token(self.token_endpoint, grant_type="client_credentials", audience=self.audience),
                "invalid_client",
                f"{alg} assertion living 3600 s (authlib's default)",
            )
            assertion = dict(_form(s.sent[-1].request.body))["client_assertion"]
            claims = b64json(assertion.split(".")[1])
            check(claims["exp"] - claims["iat"] == 3600, f"authlib's default assertion lifetime changed: {claims}")
            ok(f"{alg}: an assertion living 3600 s (authlib's default) is refused with invalid_client")

        # aud = token endpoint (authlib's default audience).
        s = session(ShortLivedPrivateKeyJWT(self.token_endpoint, alg=alg))
        tok = s.fetch_token(self.token_endpoint, grant_type="client_credentials", audience=self.audience)
        sent = s.sent[-1]
        form = dict(_form(sent.request.body))
        check("Authorization" not in sent.request.headers, "private_key_jwt sent an Authorization header")
        check(
            form.get("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            f"client_assertion_type {form.get('client_assertion_type')!r}",
        )
        header = b64json(form["client_assertion"].split(".")[0])
        claims = b64json(form["client_assertion"].split(".")[1])
        check(header.get("alg") == alg, f"assertion alg {header.get('alg')!r} != {alg}")
        check(claims.get("iss") == cid and claims.get("sub") == cid, f"assertion iss/sub: {claims}")
        check(claims.get("aud") == self.token_endpoint, f"assertion aud {claims.get('aud')!r}")
        check(claims.get("jti"), "assertion without jti")
        self.verify(tok["access_token"], f"svc:{cid}", cid)
        ok(f"client_credentials with private_key_jwt ({alg}, aud = token endpoint); PyJWT verifies the token")

        # The same request again, byte for byte: the jti is spent.
        r = self.requests.post(
            self.token_endpoint,
            data=sent.request.body,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            timeout=TIMEOUT,
        )
        check(r.status_code in (400, 401), f"replayed assertion: HTTP {r.status_code} {r.text}")
        body = r.json()
        check(body.get("error") == "invalid_client", f"replayed assertion: {body}, expected invalid_client")
        check("access_token" not in body, "replayed assertion got a token")
        ok(f"{alg}: a replayed client assertion is refused with invalid_client (HTTP {r.status_code})")

        # aud = issuer, also allowed by RFC 7523 §3 item 3.
        s = session(ShortLivedPrivateKeyJWT(self.issuer, alg=alg))
        tok = s.fetch_token(self.token_endpoint, grant_type="client_credentials", audience=self.audience)
        assertion = dict(_form(s.sent[-1].request.body))["client_assertion"]
        check(b64json(assertion.split(".")[1]).get("aud") == self.issuer, "assertion aud is not the issuer")
        self.verify(tok["access_token"], f"svc:{cid}", cid)
        ok(f"client_credentials with private_key_jwt ({alg}, aud = issuer)")


def _form(body):
    from urllib.parse import parse_qsl

    if isinstance(body, bytes):
        body = body.decode()
    return parse_qsl(body or "", keep_blank_values=True)


def run():
    from joserfc.jwk import ECKey, OKPKey

    print("interop (python/authlib): start", flush=True)
    c = Checker()
    c.secret_clients()
    c.private_key_jwt("eddsa", "EdDSA", OKPKey, lifetime_check=True)
    c.private_key_jwt("es256", "ES256", ECKey, lifetime_check=False)
    print("interop (python/authlib): all checks passed", flush=True)


def main(argv):
    if len(argv) == 3 and argv[1] == "keygen":
        keygen(argv[2])
    elif len(argv) == 2 and argv[1] == "run":
        try:
            run()
        except SystemExit:
            raise
        except Exception as e:  # any library error is a failure with its reason
            import traceback

            traceback.print_exc()
            fail(f"{type(e).__name__}: {e}")
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)
