"""Writes the fuzz seed corpus (seeds/) from the interop fixtures: every token minted by PyJWT
and node's jsonwebtoken, behind the selector byte of the case that checks its algorithm, plus
the fixtures' payloads for the cases the target signs itself. Rerun after mint.py."""
import json
import pathlib

here = pathlib.Path(__file__).parent
fixtures = json.loads((here / "../tests/fixtures/interop.json").read_text())
seeds = here / "seeds"
seeds.mkdir(exist_ok=True)
for old in seeds.iterdir():
    old.unlink()
selector = {"HS256": 0, "RS256": 1, "ES256": 2, "ES512": 3}
for i, t in enumerate(fixtures["tokens"]):
    if t["alg"] in selector:
        (seeds / f"token-{i:02}").write_bytes(bytes([selector[t["alg"]]]) + t["token"].encode())
    (seeds / f"insecure-{i:02}").write_bytes(bytes([4]) + t["token"].encode())
    payload = json.dumps({**t["payload"], "ns": {"sub": "n"}}).encode()
    (seeds / f"payload-{i:02}").write_bytes(bytes([5 + i % 2]) + payload)
