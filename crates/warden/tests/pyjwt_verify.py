"""Verify a Warden token with PyJWT against a JWKS file.

usage: pyjwt_verify.py JWKS_FILE ISSUER AUDIENCE TOKEN
Prints the claims as JSON and exits 0, or exits 1 with the reason.
"""
import json
import sys

import jwt


def main() -> int:
    jwks_file, issuer, audience, token = sys.argv[1:5]
    with open(jwks_file, encoding="utf-8") as f:
        jwks = jwt.PyJWKSet.from_dict(json.load(f))
    header = jwt.get_unverified_header(token)
    if header.get("typ") != "at+jwt":
        print(f"unexpected typ {header.get('typ')!r}", file=sys.stderr)
        return 1
    key = next((k for k in jwks.keys if k.key_id == header.get("kid")), None)
    if key is None:
        print("no key with this kid", file=sys.stderr)
        return 1
    try:
        claims = jwt.decode(
            token,
            key=key.key,
            algorithms=[key.algorithm_name],
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
        )
    except jwt.PyJWTError as e:
        print(f"rejected: {e}", file=sys.stderr)
        return 1
    print(json.dumps(claims))
    return 0


if __name__ == "__main__":
    sys.exit(main())
