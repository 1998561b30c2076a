"""Drive the flows of a running demo that handle personal data, with values planted for the plaintext scan.

    KAMENG_VAR_DIR=/tmp/scan-demo .venv/bin/python -m kameng.demo --port 8995 > /tmp/scan-demo/demo.log 2>&1 &
    .venv/bin/python bench/plaintext_demo.py --base http://127.0.0.1:8995 --log /tmp/scan-demo/demo.log \
        --values /tmp/scan-demo/planted.txt
    # stop the demo, then:
    DATABASE_URL=sqlite:////tmp/scan-demo/kameng.sqlite3 .venv/bin/python manage.py plaintext_scan \
        --values-file /tmp/scan-demo/planted.txt --path /tmp/scan-demo

Flows: phone login (API and web form, codes read from the console SMS lines of the demo's log), registering with a
phone number, wrong passwords typed with a phone number, real-name verification, buying card keys with a payment
PIN, a direct top-up to a phone number, supplier onboarding (legal person, contact, ID number) and a reseller
application whose contact is a phone number. Every planted value is written to `--values` as KIND=VALUE.
"""

from __future__ import annotations

import argparse
import re
import secrets
import time
import uuid
from pathlib import Path

import httpx

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
DEMO_PASSWORD = "kameng-demo-2026"


CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def credit_code(first_17: str = "91110105MA01ABCD2") -> str:
    total = sum(CREDIT_CODE_ALPHABET.index(char) * pow(3, position, 31) for position, char in enumerate(first_17))
    return first_17 + CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def new_phone() -> str:
    return "13" + str(5 + secrets.randbelow(5)) + "".join(str(secrets.randbelow(10)) for _ in range(8))


def new_id_number(birth: str = "19900307") -> str:
    body = "110105" + birth + f"{secrets.randbelow(900) + 100:03d}"
    if body.endswith(("997", "998", "999")):  # the local identity backend's failure sequences
        body = body[:-3] + "123"
    total = sum(int(digit) * weight for digit, weight in zip(body, ID_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


class Demo:
    def __init__(self, base: str, log: Path) -> None:
        self.base = base.rstrip("/")
        self.log = log
        self.planted: list[tuple[str, str]] = []

    def plant(self, kind: str, value: str) -> str:
        self.planted.append((kind, value))
        return value

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30, follow_redirects=False,
                            headers={"X-Device-Id": uuid.uuid4().hex})

    def sms_code(self, phone: str, *, after: int) -> str:
        masked = phone[:3] + "****" + phone[-4:]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            text = self.log.read_bytes()[after:].decode(errors="replace")
            found = re.findall(r"短信验证码 (\d{6}) 已发送至 " + re.escape(masked), text)
            if found:
                return found[-1]
            time.sleep(0.3)
        raise RuntimeError(f"no SMS code for {masked} in {self.log}")

    def log_size(self) -> int:
        return self.log.stat().st_size

    @staticmethod
    def csrf(client: httpx.Client, path: str) -> str:
        response = client.get(path)
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.text)
        if found:
            return found.group(1)
        return client.cookies.get("csrftoken") or ""

    def post_form(self, client: httpx.Client, path: str, data: dict[str, str], *, page: str = "") -> httpx.Response:
        token = self.csrf(client, page or path)
        response = client.post(path, data={"csrfmiddlewaretoken": token, **data}, headers={"Referer": self.base + path})
        print(f"  POST {path}: {response.status_code}")
        return response

    def phone_login_api(self) -> httpx.Client:
        phone = self.plant("phone", new_phone())
        client = self.client()
        offset = self.log_size()
        sent = client.post("/api/v1/account/phone/code", json={"phone": phone})
        print(f"  phone code (API): {sent.status_code}")
        code = self.sms_code(phone, after=offset)
        logged = client.post("/api/v1/account/phone/login", json={"phone": phone, "code": code})
        print(f"  phone login (API): {logged.status_code}")
        return client

    def phone_login_web(self) -> httpx.Client:
        phone = self.plant("phone", new_phone())
        client = self.client()
        offset = self.log_size()
        self.post_form(client, "/login/sms/send/", {"phone": phone}, page="/login/?tab=sms")
        code = self.sms_code(phone, after=offset)
        token = self.csrf(client, "/login/?tab=sms")
        response = client.post("/login/sms/", data={"csrfmiddlewaretoken": token, "phone": phone, "code": code},
                               headers={"Referer": self.base + "/login/"})
        print(f"  phone login (web): {response.status_code}")
        return client

    def password_login(self, username: str, password: str) -> httpx.Client:
        client = self.client()
        self.post_form(client, "/login/", {"username": username, "password": password})
        return client

    def run(self) -> None:
        print("phone logins")
        api_buyer = self.phone_login_api()
        web_buyer = self.phone_login_web()
        print("register with a phone number, wrong passwords typed with phone numbers")
        register_phone = self.plant("phone", new_phone())
        self.post_form(self.client(), "/register/", {"login": register_phone, "password": "Canary-pass-2026",
                                                     "password_again": "Canary-pass-2026"})
        for _ in range(3):
            self.password_login(self.plant("phone", new_phone()), "wrong-password")
        self.password_login(register_phone, "wrong-password")
        print("real-name verification")
        name = self.plant("name", "慕容" + secrets.choice("思远晓明雨辰子墨") + secrets.choice("安宁康泰"))
        id_number = self.plant("id", new_id_number())
        csrf = self.csrf(api_buyer, "/account/realname/")
        verified = api_buyer.post("/api/v1/account/realname", json={"name": name, "id_number": id_number},
                                  headers={"X-CSRFToken": csrf, "Referer": self.base + "/"})
        print(f"  realname (API): {verified.status_code} {verified.text[:80]}")
        web_name = self.plant("name", "欧阳" + secrets.choice("明月清风"))
        web_id = self.plant("id", new_id_number("19850611"))
        self.post_form(web_buyer, "/account/realname/", {"name": web_name, "id_number": web_id})
        print("payment PIN, card keys, a direct top-up")
        buyer = self.password_login("demo", DEMO_PASSWORD)
        pin = self.plant("pin", f"{secrets.randbelow(900000) + 100000}")
        self.post_form(buyer, "/account/security/pin/", {"password": DEMO_PASSWORD, "new_pin": pin,
                                                          "new_pin_again": pin})
        products = buyer.get("/api/v1/shop/products").json()
        csrf = buyer.cookies.get("csrftoken") or ""
        headers = {"X-CSRFToken": csrf, "Referer": self.base + "/"}
        card_sku = next(sku["id"] for product in products if product["delivery_kind"] == "card_key"
                        for sku in product["skus"] if sku["stock"] > 0)
        for with_pin in (pin, "000000"):
            order = buyer.post("/api/v1/shop/orders", json={"sku_id": card_sku, "quantity": 2, "pay_with_wallet": True,
                                                            "request_id": uuid.uuid4().hex, "pin": with_pin},
                               headers=headers)
            print(f"  card-key order: {order.status_code} {order.text[:60]}")
        topup = next((product, field) for product in products for field in product["topup_form"]
                     if "phone" in field.get("name", "") or field.get("kind") == "phone")
        phone = self.plant("phone", new_phone())
        order = buyer.post("/api/v1/shop/orders", json={"sku_id": topup[0]["skus"][0]["id"], "quantity": 1,
                                                        "pay_with_wallet": True, "request_id": uuid.uuid4().hex,
                                                        "pin": pin, "recharge_account": phone}, headers=headers)
        print(f"  direct top-up order: {order.status_code} {order.text[:60]}")
        print("supplier onboarding")
        supplier = self.password_login(register_phone, "Canary-pass-2026")
        self.post_form(supplier, "/supplier/apply/", {"name": "慕容供货" + secrets.token_hex(2)})
        legal = self.plant("name", "司马" + secrets.choice("长风远山"))
        contact = self.plant("name", "诸葛" + secrets.choice("明亮青云"))
        contact_phone = self.plant("phone", new_phone())
        self.post_form(supplier, "/supplier/company/", {
            "company_name": "慕容数字科技有限公司", "credit_code": credit_code(), "legal_person_name": legal,
            "contact_name": contact, "contact_phone": contact_phone, "business_scope": "点卡"})
        self.post_form(supplier, "/supplier/company/legal-person/", {"id_number": self.plant("id", new_id_number())})
        print("reseller application")
        reseller_phone = self.plant("phone", new_phone())
        self.post_form(web_buyer, "/reseller/apply/", {"contact": reseller_phone, "note": "申请代理"})
        time.sleep(5)  # the worker's and the simulator's lines after the orders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="http://127.0.0.1:8995")
    parser.add_argument("--log", type=Path, required=True, help="the demo's output, where console SMS codes appear")
    parser.add_argument("--values", type=Path, required=True, help="where to write the planted KIND=VALUE lines")
    args = parser.parse_args()
    demo = Demo(args.base, args.log)
    try:
        demo.run()
    finally:
        # The demo's banner prints the simulated gateways' keys on purpose: they are not looked for.
        printed = re.findall(r"^\s+key ([0-9a-f]{32})\b", args.log.read_text(errors="replace"), re.MULTILINE)
        demo.planted += [("allow", key) for key in printed]
        args.values.write_text("".join(f"{kind}={value}\n" for kind, value in demo.planted))
        print(f"{len(demo.planted)} planted values in {args.values}")


if __name__ == "__main__":
    main()
