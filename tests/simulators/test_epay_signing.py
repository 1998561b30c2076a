"""The simulator's MD5 signing and kameng.payments' must agree with each other and with the protocol text."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from kameng.payments.gateways.epay import EpayV1Gateway, epay_canonical, epay_sign
from kameng.simulators.epay import canonical_string, is_signature_valid, md5_signature, with_signature

KEY = "k3y-ABC"
PARAMS = {"pid": "1001", "type": "alipay", "out_trade_no": "X", "name": "测试", "money": "1.00"}


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def test_both_implementations_match_a_canonical_string_written_by_hand() -> None:
    expected = _md5("money=1.00&name=测试&out_trade_no=X&pid=1001&type=alipay" + KEY)

    assert canonical_string(PARAMS) == "money=1.00&name=测试&out_trade_no=X&pid=1001&type=alipay"
    assert md5_signature(PARAMS, KEY) == expected
    assert epay_sign(PARAMS, KEY) == expected
    assert len(expected) == 32
    assert expected == expected.lower()


def test_blank_values_sign_and_sign_type_are_left_out() -> None:
    noisy = {**PARAMS, "param": "", "sitename": "", "sign": "deadbeef", "sign_type": "MD5"}

    assert canonical_string(noisy) == "money=1.00&name=测试&out_trade_no=X&pid=1001&type=alipay"
    assert epay_canonical(noisy) == canonical_string(noisy)
    assert md5_signature(noisy, KEY) == md5_signature(PARAMS, KEY) == epay_sign(noisy, KEY)


def test_money_is_signed_as_the_raw_string_received() -> None:
    short = {**PARAMS, "money": "1"}

    assert md5_signature(short, KEY) == _md5("money=1&name=测试&out_trade_no=X&pid=1001&type=alipay" + KEY)
    assert md5_signature(short, KEY) != md5_signature(PARAMS, KEY)
    assert epay_sign(short, KEY) == md5_signature(short, KEY)


def test_values_are_joined_raw_not_url_encoded_and_keys_sorted_by_ascii() -> None:
    params = {"notify_url": "http://a.example/n?x=1&y=2", "Zeta": "z", "alpha": "a b"}

    expected = "Zeta=z&alpha=a b&notify_url=http://a.example/n?x=1&y=2"
    assert canonical_string(params) == expected
    assert epay_canonical(params) == expected
    assert md5_signature(params, KEY) == epay_sign(params, KEY) == _md5(expected + KEY)


def test_key_is_appended_directly_without_separator() -> None:
    assert md5_signature({"a": "1"}, "K") == _md5("a=1K")
    assert md5_signature({"a": "1"}, "K") != _md5("a=1&key=K")


def test_signature_check_accepts_the_payments_signature_and_refuses_tampering() -> None:
    signed = EpayV1Gateway(gateway_url="http://gw/", merchant_id="1001", merchant_key=KEY).signed(PARAMS)

    assert is_signature_valid(signed, KEY)
    assert is_signature_valid({**signed, "sign": signed["sign"].upper()}, KEY)
    assert not is_signature_valid({**signed, "money": "100.00"}, KEY)
    assert not is_signature_valid(signed, "another-key")
    assert not is_signature_valid({key: value for key, value in signed.items() if key != "sign"}, KEY)
    assert not is_signature_valid({**signed, "sign_type": "RSA"}, KEY)


def test_with_signature_adds_sign_and_md5_sign_type() -> None:
    signed = with_signature(PARAMS, KEY)

    assert signed == {**PARAMS, "sign": epay_sign(PARAMS, KEY), "sign_type": "MD5"}


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789", min_size=1, max_size=12)
_values = st.text(max_size=20).filter(lambda value: "\x00" not in value)


@given(params=st.dictionaries(_names, _values, max_size=10), key=st.text(min_size=1, max_size=40))
def test_both_implementations_agree_on_any_parameters(params: dict[str, str], key: str) -> None:
    assert canonical_string(params) == epay_canonical(params)
    assert md5_signature(params, key) == epay_sign(params, key)
