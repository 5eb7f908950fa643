"""Verification cost with fetched keys vs the same key inline (issue 22), on one cluster that
switches between the two by ALTER SYSTEM + reload, five alternating runs of N distinct RS256
tokens (the token cache never hits). PG_CONFIG=... N=2000 python3 bench/jwks_fetched.py

"""
import json, os, statistics, subprocess, sys, time
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "tests/security"))
import test_jwks as T
import psycopg

N = int(os.environ.get("N", "3000"))
T.HTTPS_PORT = 54449
T.ISSUER = f"https://localhost:{T.HTTPS_PORT}"
NAME, PORT = f"ea-jwks-bench-h5-{T.MAJOR}", 54427
tls = T.make_tls()
key = T.SigningKey("k1")
p = T.Provider(T.HTTPS_PORT, tls["good"])
p.routes = {"/.well-known/openid-configuration": T.json_route(T.discovery(issuer=T.ISSUER, jwks_uri=f"{T.ISSUER}/jwks")),
            "/jwks": T.json_route(T.jwks(key))}
p.start()
conf = "\n".join(["electric_auth.jwt_alg = 'RS256'", f"electric_auth.oidc_issuer = '{T.ISSUER}'",
                  f"electric_auth.jwks_ca_file = '{T.TLS_DIR}/ca.pem'"])
T.cluster("start", NAME, PORT, conf=conf)
try:
    c = T.connect(NAME, PORT)
    c.execute("CREATE EXTENSION electric_auth")
    T.wait_until(lambda: c.execute("SELECT usable_keys FROM electric_auth.key_source()").fetchone()[0] == 1)
    tokens = [key.mint(sub=f"u{i}") for i in range(N)]
    inline = json.dumps({"keys": [key.jwk]})

    def configure(mode):
        with T.connect(NAME, PORT) as s:
            if mode == "inline":
                s.execute("ALTER SYSTEM RESET electric_auth.oidc_issuer")
                s.execute("ALTER SYSTEM SET electric_auth.jwt_key = " + psycopg.sql.Literal(inline).as_string(s))
            else:
                s.execute("ALTER SYSTEM RESET electric_auth.jwt_key")
                s.execute(f"ALTER SYSTEM SET electric_auth.oidc_issuer = '{T.ISSUER}'")
            s.execute("SELECT pg_reload_conf()")
        time.sleep(1.5)

    def run(mode):
        configure(mode)
        with T.connect(NAME, PORT) as s:
            assert s.execute("SELECT electric_auth.user_id(%s)", (tokens[0],)).fetchone()[0] == "u0"
            t = time.perf_counter()
            n = s.execute("SELECT count(electric_auth.user_id(t)) FROM unnest(%s::text[]) t", (tokens,)).fetchone()[0]
            assert n == N
            return (time.perf_counter() - t) / N * 1e6

    results = {"fetched": [], "inline": []}
    for _ in range(5):
        results["fetched"].append(run("fetched"))
        results["inline"].append(run("inline"))
    for k, v in results.items():
        print(f"{k}: median {statistics.median(v):.1f} us/verify  runs {[round(x,1) for x in v]}")
finally:
    T.cluster("stop", NAME)
    p.stop()
