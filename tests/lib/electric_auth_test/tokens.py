"""Tokens for the suites: minted by PyJWT (an independent JWT library), signed by hand with
Python's own hmac where no library would write such a header, and signed by node's
`jsonwebtoken` (the library Electric's docs use) or `jose` (EdDSA, which jsonwebtoken lacks);
and the committed key fixtures (core/tests/fixtures).

node's libraries come from tests/lib/node (`npm ci` there, once).
"""

import base64
import functools
import hashlib
import hmac
import json
import subprocess
import time

import jwt
from jwt.api_jws import PyJWS

from . import ROOT

NODE_DIR = ROOT / "tests/lib/node"
FIXTURES_DIR = ROOT / "core/tests/fixtures"
# A token's iat is this many seconds in the past, so that no clock drift setting matters.
ISSUED_AGO = 10


def now():
    return int(time.time())


@functools.cache
def fixture(name):
    """core/tests/fixtures/NAME.json: `interop` (keys and tokens of the nine algorithms) or
    `keysets` (JWKs, JWKSs and the algorithms beyond Electric's)."""
    return json.loads((FIXTURES_DIR / f"{name}.json").read_text())


class Minter:
    """Mints tokens with PyJWT under one configuration:

        mint = Minter(SECRET, iss=ISS, aud=AUD)     # HS256, sub "alice", valid for an hour
        mint()  mint("bob")  mint(exp=now() - 60, key=ATTACKER, headers={"kid": "k"})
        mint(claims={"a\\x00": 1})                   # claims no keyword can name

    Claims: sub, iat (ISSUED_AGO seconds ago), exp (`lifetime` from now), the defaults given
    here, then the call's; a claim whose value is None is left out."""

    def __init__(self, key, alg="HS256", *, sub="alice", lifetime=3600, **defaults):
        self.key, self.alg, self.sub, self.lifetime = key, alg, sub, lifetime
        self.defaults = defaults

    def claims(self, sub=None, *, claims=None, **extra):
        """The payload a call with the same arguments signs."""
        issued = now()
        payload = {"sub": sub if sub is not None else self.sub, "iat": issued - ISSUED_AGO,
                   "exp": issued + self.lifetime, **self.defaults, **(claims or {}), **extra}
        return {name: value for name, value in payload.items() if value is not None}

    def __call__(self, sub=None, *, key=None, alg=None, headers=None, claims=None, **extra):
        """A token; alg="none" makes an unsigned one."""
        alg = alg or self.alg
        key = None if alg == "none" else self.key if key is None else key
        return jwt.encode(self.claims(sub, claims=claims, **extra), key, algorithm=alg,
                          headers=headers)

    def raw(self, payload: bytes, key=None):
        """PyJWT's JWS layer signing arbitrary payload bytes (hostile JSON a dict cannot
        express), with this minter's key and algorithm."""
        return PyJWS().encode(payload, self.key if key is None else key, algorithm=self.alg)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_signed(header: bytes, payload: bytes, hmac_key: bytes) -> str:
    """An HS256-style token with an arbitrary header (a lowercase or duplicated `alg`, a
    `crit`), signed with the standard library's hmac: PyJWT refuses to write such tokens."""
    signing_input = f"{b64url(header)}.{b64url(payload)}"
    tag = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(tag)}"


def sign_with_node(jobs):
    """Tokens signed by node, one per job: {"alg", "payload", and "key" (a secret or a private
    PEM) or "keyBase64", optionally "kid" and "library": "jose" (default jsonwebtoken)}."""
    node = subprocess.run(["node", str(NODE_DIR / "sign.mjs")], input=json.dumps(jobs),
                          capture_output=True, text=True, check=True)
    return json.loads(node.stdout)


def node_library_version(library):
    """The installed version of node's `jsonwebtoken` or `jose`."""
    package = NODE_DIR / "node_modules" / library / "package.json"
    return json.loads(package.read_text())["version"]
