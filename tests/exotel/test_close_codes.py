"""The close-code table and the codes our server sends for it (`exotel.protocol.wire_code`)."""

import pytest

from exotel.protocol import CloseCode, wire_code


def test_every_code_we_may_send_is_one_daphne_sends():
    sent = {code: wire_code(code) for code in CloseCode if code != CloseCode.ABNORMAL}
    assert all(wire == 1000 or 3000 <= wire <= 4999 for wire in sent.values())  # autobahn's rule
    assert len(set(sent.values())) == len(sent)  # and each keeps its meaning
    assert (sent[CloseCode.NORMAL], sent[CloseCode.POLICY_VIOLATION], sent[CloseCode.INTERNAL_ERROR]) == (1000, 4008, 4011)
    assert (sent[CloseCode.GOING_AWAY], sent[CloseCode.SERVICE_RESTART]) == (4001, 4012)  # a server's shutdown


def test_1006_is_never_sent():
    with pytest.raises(ValueError, match="never sent"):
        wire_code(CloseCode.ABNORMAL)
