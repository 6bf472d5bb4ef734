"""A deterministic corpus of realistic audit payloads with labelled secrets and harmless look-alikes.

Each item is ``{"kind", "text", "secrets": [...], "lookalikes": [...]}``: every labelled secret
must be gone from a tool's output (recall) and every look-alike must still be there (precision on
things that merely look like secrets: UUIDs, trace ids, hashes, timestamps, Luhn-invalid numbers,
ISBNs, order ids). Secrets are generated valid (Luhn, mod-97, decodable JWT headers), so a
validating detector has no excuse.

    python -m benchmarks.corpus.generate 2000 > corpus.jsonl
"""

from __future__ import annotations

import base64
import json
import random
import string
import sys
import uuid
from typing import Any, Callable
from urllib.parse import quote

from otel_audit.redaction.validators import luhn_ok

ALNUM = string.ascii_letters + string.digits
FIRST = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
DOMAINS = ["example.com", "mail.example.org", "corp.example.net", "shop.example.de"]


class Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def s(self, alphabet: str, n: int) -> str:
        return "".join(self.r.choice(alphabet) for _ in range(n))

    # --- secrets ---------------------------------------------------------------------------
    def card(self) -> str:
        prefix, length = self.r.choice([("4", 16), ("51", 16), ("55", 16), ("37", 15), ("6011", 16)])
        partial = prefix + self.s(string.digits, length - len(prefix) - 1)
        number = next(partial + d for d in string.digits if luhn_ok(partial + d))
        if length == 16 and self.r.random() < 0.5:
            sep = self.r.choice([" ", "-"])
            number = sep.join(number[i : i + 4] for i in range(0, 16, 4))
        return number

    def iban(self) -> str:
        country, length = self.r.choice([("DE", 22), ("GB", 22), ("FR", 27), ("NL", 18), ("ES", 24)])
        bban = self.s(string.digits, length - 4) if country != "GB" else "WEST" + self.s(string.digits, 14)
        if country == "NL":
            bban = "ABNA" + self.s(string.digits, 10)
        check = 98 - int("".join(str(int(c, 36)) for c in bban + country + "00")) % 97
        value = f"{country}{check:02d}{bban}"
        return " ".join(value[i : i + 4] for i in range(0, len(value), 4)) if self.r.random() < 0.3 else value

    def email(self) -> str:
        return f"{self.r.choice(FIRST)}.{self.s(string.ascii_lowercase, 5)}@{self.r.choice(DOMAINS)}"

    def ssn(self) -> str:
        return f"{self.r.randint(1, 665):03d}-{self.r.randint(1, 99):02d}-{self.r.randint(1, 9999):04d}"

    def jwt(self) -> str:
        def part(data: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

        return ".".join([part({"alg": "HS256", "typ": "JWT"}), part({"sub": self.s(string.digits, 6), "exp": 1700000000}),
                         self.s(ALNUM + "-_", 43)])

    def aws_key(self) -> str:
        return "AKIA" + self.s(string.ascii_uppercase + "234567", 16)

    def aws_secret(self) -> str:
        return self.s(ALNUM + "/+", 40)

    def pem_body(self) -> str:
        return base64.b64encode(self.r.randbytes(120)).decode()

    def password(self) -> str:
        return self.s(ALNUM, 6) + self.r.choice("!#%*") + self.s(ALNUM, 5)

    def github(self) -> str:
        return "ghp_" + self.s(ALNUM, 36)

    def slack(self) -> str:
        return "xoxb-" + self.s(string.digits, 12) + "-" + self.s(ALNUM, 24)

    def stripe(self) -> str:
        return "sk_live_" + self.s(ALNUM, 24)

    def google(self) -> str:
        return "AIza" + self.s(ALNUM + "-_", 35)

    def openai(self) -> str:
        return "sk-proj-" + self.s(ALNUM, 40)

    def signature(self) -> str:
        return self.s(string.hexdigits.lower()[:16], 64)

    def token(self) -> str:
        return self.s(ALNUM, 32)

    # --- look-alikes ------------------------------------------------------------------------
    def uuid(self) -> str:
        return str(uuid.UUID(int=self.r.getrandbits(128)))

    def trace_id(self) -> str:
        return self.s("0123456789abcdef", 32)

    def sha(self) -> str:
        return self.s("0123456789abcdef", 64)

    def timestamp(self) -> str:
        return self.r.choice([f"2024-0{self.r.randint(1, 9)}-1{self.r.randint(0, 9)}T1{self.r.randint(0, 9)}:3{self.r.randint(0, 9)}:0{self.r.randint(0, 9)}Z",
                              str(1700000000000 + self.r.randint(0, 10**9)), str(1700000000000000000 + self.r.randint(0, 10**15))])

    def bad_card(self) -> str:
        number = self.card().replace(" ", "").replace("-", "")
        return number[:-1] + str((int(number[-1]) + 1 + self.r.randint(0, 8)) % 10)

    def isbn(self) -> str:
        digits = "978" + self.s(string.digits, 9)
        check = (10 - sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(digits)) % 10) % 10
        return digits + str(check)

    def order_id(self) -> str:
        return self.r.choice([f"ORD-2024-{self.s(string.digits, 6)}", f"INV{self.s(string.digits, 8)}", self.s(string.digits, 12)])

    def lookalike(self) -> str:
        return self.r.choice([self.uuid, self.trace_id, self.sha, self.timestamp, self.bad_card, self.isbn, self.order_id])()


Item = dict[str, Any]


def _headers(g: Gen) -> Item:
    token, sid = g.jwt(), g.token()
    la = [g.uuid(), g.trace_id()]
    text = (f"Host: api.example.com\nAuthorization: Bearer {token}\nCookie: sessionid={sid}; theme=dark\n"
            f"X-Request-Id: {la[0]}\ntraceparent: 00-{la[1]}-00f067aa0ba902b7-01\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)")
    return {"kind": "headers", "text": text, "secrets": [token, sid], "lookalikes": la}


def _json_body(g: Gen) -> Item:
    pw, card, iban = g.password(), g.card(), g.iban()
    la = [g.order_id(), g.bad_card(), g.timestamp()]
    body = {"username": g.r.choice(FIRST), "password": pw, "payment": {"card": card, "iban": iban, "amount": 12.5},
            "order_id": la[0], "reference": la[1], "created": la[2]}
    return {"kind": "json_body", "text": json.dumps(body), "secrets": [pw, card, iban], "lookalikes": la}


def _form_body(g: Gen) -> Item:
    pw, csrf = g.password(), g.token()
    la = [g.order_id()]
    text = f"username={g.r.choice(FIRST)}&password={quote(pw)}&csrfmiddlewaretoken={csrf}&next=%2Forders%2F{la[0]}"
    return {"kind": "form_body", "text": text, "secrets": [quote(pw), csrf], "lookalikes": la}


def _query(g: Gen) -> Item:
    sig, tok, key = g.signature(), g.token(), g.aws_key()
    la = [g.uuid()]
    text = (f"https://bucket.s3.amazonaws.com/exports/{la[0]}.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            f"&X-Amz-Credential={key}%2F20240115%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240115T103000Z"
            f"&X-Amz-Expires=3600&X-Amz-Signature={sig} then callback?code={tok}&state=xyz")
    return {"kind": "signed_url", "text": text, "secrets": [sig, tok, key], "lookalikes": la}


def _sql(g: Gen) -> Item:
    email, ssn = g.email(), g.ssn()
    la = [g.order_id()]
    text = f"INSERT INTO customers (email, ssn, order_ref, note) VALUES ('{email}', '{ssn}', '{la[0]}', 'vip')"
    return {"kind": "sql", "text": text, "secrets": [email, ssn], "lookalikes": la}


def _message(g: Gen) -> Item:
    email, card = g.email(), g.card()
    la = [g.trace_id(), g.isbn(), g.timestamp()]
    text = (f"Payment by {email} with card {card} failed at {la[2]}: issuer declined (trace {la[0]}); "
            f"basket contained book ISBN {la[1]}.")
    return {"kind": "message", "text": text, "secrets": [email, card], "lookalikes": la}


def _nested(g: Gen) -> Item:
    secret_key, github, email = g.aws_secret(), g.github(), g.email()
    la = [g.sha(), g.uuid()]
    data = {"event": "deploy", "actor": {"email": email}, "config": {"env": [{"name": "GITHUB_TOKEN", "value": github},
            {"name": "AWS_SECRET_ACCESS_KEY", "value": secret_key}], "image_digest": "sha256:" + la[0]}, "run": la[1]}
    return {"kind": "nested", "text": json.dumps(data), "secrets": [secret_key, github, email], "lookalikes": la}


def _config_dump(g: Gen) -> Item:
    key, secret, dsn_pw = g.aws_key(), g.aws_secret(), g.password().replace("%", "x").replace("#", "x")
    la = [g.uuid()]
    text = (f"[default]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"
            f"database_url = postgres://app:{dsn_pw}@db.internal:5432/prod\nrequest_id = {la[0]}")
    return {"kind": "config", "text": text, "secrets": [key, secret, dsn_pw], "lookalikes": la}


def _pem(g: Gen) -> Item:
    body = g.pem_body()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    la = [g.sha()]
    text = ("uploaded key for host fingerprint " + la[0] + ":\n-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(lines)
            + "\n-----END RSA PRIVATE KEY-----")
    return {"kind": "pem", "text": text, "secrets": [line for line in lines if len(line) >= 16], "lookalikes": la}


def _vendor_tokens(g: Gen) -> Item:
    tokens = [g.slack(), g.stripe(), g.google(), g.openai()]
    la = [g.trace_id()]
    text = (f"rotated integrations: slack={tokens[0]} stripe {tokens[1]}, maps key {tokens[2]}; "
            f"llm {tokens[3]} (job {la[0]})")
    return {"kind": "vendor_tokens", "text": text, "secrets": tokens, "lookalikes": la}


def _clean(g: Gen) -> Item:
    la = [g.lookalike() for _ in range(4)]
    text = (f"GET /api/orders/{la[0]} 200 in 12ms; trace {la[1]}; cache key {la[2]}; "
            f"user agent curl/8.5.0; batch {la[3]} processed")
    return {"kind": "clean", "text": text, "secrets": [], "lookalikes": la}


KINDS: list[Callable[[Gen], Item]] = [_headers, _json_body, _form_body, _query, _sql, _message, _nested, _config_dump,
                                      _pem, _vendor_tokens, _clean, _clean]


def generate(count: int, seed: int = 20240115) -> list[Item]:
    g = Gen(seed)
    return [KINDS[i % len(KINDS)](g) for i in range(count)]


if __name__ == "__main__":
    for item in generate(int(sys.argv[1]) if len(sys.argv) > 1 else 1200):
        print(json.dumps(item))
