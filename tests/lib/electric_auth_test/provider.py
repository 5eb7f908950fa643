"""An identity provider for the suites (issue 22): a real HTTPS server on loopback whose answers a
test changes as it goes, the TLS material it serves with (a CA and certificates made here with the
`cryptography` package), and RSA signing keys published as a JWKS and minting tokens with PyJWT.

    tls = make_tls(scratch_dir("my-suite-tls"))          # ca.pem there; certificates for
    provider = Provider(port, tls["good"])               #   localhost and 127.0.0.1
    key = SigningKey("k1", iss=ISS, aud=AUD)
    provider.routes = {"/jwks": json_route(lambda: jwks(key), "application/jwk-set+json")}
    provider.start()                                     # ... electric_auth.jwks_url =
    provider.requests["/jwks"]                           #   https://localhost:PORT/jwks

The server counts every request by path (`requests`), so a test can tell who fetched and when.
Used by tests/security/test_jwks.py, tests/citus/test_citus.py and bench/jwks_bench.py.
"""

import collections
import datetime
import http.server
import ipaddress
import json
import shutil
import ssl
import threading

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from .tokens import NODE_DIR, Minter, sign_with_node

# The names the good certificate is for: where the server listens, by name and by address.
LOOPBACK_NAMES = ("localhost", "127.0.0.1")


# --- TLS material -------------------------------------------------------------------------------

def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def _leaf(ca_key, ca_cert, names, path):
    """A server certificate for `names` (DNS names or IP addresses; the first is its CN) signed
    by the CA, written to PATH.crt and its key to PATH.key; returns both paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = [x509.IPAddress(ipaddress.ip_address(n)) if n[0].isdigit() else x509.DNSName(n)
            for n in names]
    cert = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return path.with_suffix(".crt"), path.with_suffix(".key")


def make_tls(tls_dir, names=LOOPBACK_NAMES, wrong_names=("wrong.example",),
             label="ea test"):
    """A fresh `tls_dir` (world-readable, so the server's `postgres` user reads ca.pem there)
    with a CA (ca.pem, the file electric_auth.jwks_ca_file names) and three (certificate, key)
    pairs, returned by name: "good" (that CA, for `names`), "wrong_name" (that CA, for
    `wrong_names`) and "rogue" (for names[0], from another CA nobody trusts)."""
    shutil.rmtree(tls_dir, ignore_errors=True)
    tls_dir.mkdir(mode=0o755, parents=True)
    ca_key, ca_cert = _ca(f"{label} CA")
    (tls_dir / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    rogue_key, rogue_cert = _ca(f"{label} rogue CA")
    tls = {
        "good": _leaf(ca_key, ca_cert, list(names), tls_dir / "good"),
        "wrong_name": _leaf(ca_key, ca_cert, list(wrong_names), tls_dir / "wrong"),
        "rogue": _leaf(rogue_key, rogue_cert, [names[0]], tls_dir / "rogue"),
    }
    for f in tls_dir.iterdir():
        f.chmod(0o644)
    return tls


# --- Signing keys --------------------------------------------------------------------------------

class SigningKey:
    """An RSA key (RS256; or a P-256 key with alg="ES256") known by `kid`: its public JWK
    (`jwk`, for a JWKS; `private_jwk`, the same with its private members) and a minter of tokens
    with that kid; `claims` are every token's defaults (iss, aud, ...). Each token minted is
    appended to `minted` if given, for a test to search logs for."""

    def __init__(self, kid, minted=None, alg="RS256", **claims):
        self.kid, self.minted, self.alg = kid, minted, alg
        if alg == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            algorithm = jwt.algorithms.ECAlgorithm
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            algorithm = jwt.algorithms.RSAAlgorithm
        self.jwk = json.loads(algorithm.to_jwk(self.private.public_key()))
        self.jwk.update(kid=kid, alg=alg, use="sig")
        self.private_jwk = dict(json.loads(algorithm.to_jwk(self.private)), **self.jwk)
        self.minter = Minter(self.private, alg, **claims)

    def _keep(self, token):
        if self.minted is not None:
            self.minted.append(token)
        return token

    def mint(self, kid=None, **claims):
        """A token signed with this key, its header naming `kid` (default: this key's)."""
        return self._keep(self.minter(headers={"kid": kid or self.kid}, **claims))

    def mint_with_jose(self):
        """A token from node's jose (tests/lib/node, after `npm ci` there), or None."""
        if not (NODE_DIR / "node_modules/jose").exists():
            return None
        pem = self.private.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode()
        token = sign_with_node([{"alg": self.alg, "key": pem, "kid": self.kid, "library": "jose",
                                 "payload": self.minter.claims("jose-user")}])[0]
        return self._keep(token)


def jwks(*keys):
    """The JWKS document (bytes) publishing `keys` (SigningKeys)."""
    return json.dumps({"keys": [k.jwk for k in keys]}).encode()


# --- The provider --------------------------------------------------------------------------------

class Provider:
    """An HTTPS server on `host`:`port` with a (certificate, key) pair (one of make_tls()'s)
    whose answers the test changes: routes[path] -> fn(handler). requests[path] counts every
    GET, answered or not; authorizations lists the Authorization headers any request carried."""

    def __init__(self, port, cert_and_key, host="127.0.0.1"):
        self.host, self.port, self.cert_and_key = host, port, cert_and_key
        self.routes, self.requests, self.server = {}, collections.Counter(), None
        self.authorizations = []

    def start(self):
        provider = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                provider.requests[self.path] += 1
                if self.headers.get("Authorization") is not None:
                    provider.authorizations.append(self.headers["Authorization"])
                route = provider.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                else:
                    try:
                        route(self)
                    except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                        pass

            def log_message(self, *args):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        server = http.server.ThreadingHTTPServer((self.host, self.port), Handler)
        server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*map(str, self.cert_and_key))
        server.socket = context.wrap_socket(server.socket, server_side=True,
                                            do_handshake_on_connect=False)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.server = server

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def send(handler, body, content_type="application/json", status=200, headers=()):
    """Answers the request `handler` serves with `body` (bytes)."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers:
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def json_route(body, content_type="application/json"):
    """A route answering `body` (bytes, or a function returning them at each request)."""
    return lambda h: send(h, body() if callable(body) else body, content_type)
