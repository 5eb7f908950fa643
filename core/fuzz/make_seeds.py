"""Writes the fuzz seed corpus (seeds/) from the interop and key-set fixtures: every token minted
by PyJWT, node's jsonwebtoken and node's jose, behind the selector byte of the case that checks
it (the order of cases in fuzz_targets/verify.rs), plus the fixtures' payloads for the cases the
target signs itself. Rerun after mint.py and mint_keysets.py."""
import json
import pathlib

here = pathlib.Path(__file__).parent
fixtures = json.loads((here / "../tests/fixtures/interop.json").read_text())
seeds = here / "seeds"
seeds.mkdir(exist_ok=True)
for old in seeds.iterdir():
    old.unlink()
selector = {"HS256": 0, "RS256": 1, "ES256": 2, "ES512": 3}
INSECURE, PAYLOAD = 7, 8
for i, t in enumerate(fixtures["tokens"]):
    if t["alg"] in selector:
        (seeds / f"token-{i:02}").write_bytes(bytes([selector[t["alg"]]]) + t["token"].encode())
    (seeds / f"insecure-{i:02}").write_bytes(bytes([INSECURE]) + t["token"].encode())
    payload = json.dumps({**t["payload"], "ns": {"sub": "n"}}).encode()
    (seeds / f"payload-{i:02}").write_bytes(bytes([PAYLOAD + i % 2]) + payload)
keysets = json.loads((here / "../tests/fixtures/keysets.json").read_text())
beyond = {"RS256": 4, "EdDSA": 5, "PS256": 6}  # the JWKS case, EdDSA, PS256
for i, t in enumerate(keysets["tokens"]):
    if t["alg"] in beyond:
        (seeds / f"keyset-{i:02}").write_bytes(bytes([beyond[t["alg"]]]) + t["token"].encode())
