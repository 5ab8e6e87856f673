"""The gateway's own C-STORE response encoding must be byte for byte what pynetdicom would send, its
socket reads must honour pynetdicom's contract, and its P-DATA-TF decoding must give what pynetdicom's does."""

from __future__ import annotations

import socket
import struct
import threading

import pytest
from pynetdicom.dimse_messages import C_STORE_RSP
from pynetdicom.dimse_primitives import C_STORE

from dicom_gateway.reactor import LAST_COMMAND_FRAGMENT, GatewaySocket, c_store_rsp_command, p_data_values


def pynetdicom_encoding(message_id: int, sop_class: str, sop_uid: str, status: int) -> bytes:
    rsp = C_STORE()
    rsp.MessageIDBeingRespondedTo = message_id
    rsp.AffectedSOPClassUID = sop_class
    rsp.AffectedSOPInstanceUID = sop_uid
    rsp.Status = status
    msg = C_STORE_RSP()
    msg.primitive_to_message(rsp)
    (pdata,) = list(msg.encode_msg(1, 16384))
    ((context_id, pdv),) = pdata.presentation_data_value_list
    assert context_id == 1
    return pdv


@pytest.mark.parametrize("message_id, sop_class, sop_uid, status", [
    (1, "1.2.840.10008.5.1.4.1.1.2", "1.2.826.0.1.3680043.8.498.1", 0x0000),  # odd-length UIDs
    (65535, "1.2.840.10008.5.1.4.1.1.4", "1.2.826.0.1.3680043.8.498.12", 0x0000),  # even-length UIDs
    (7, "1.2.840.10008.5.1.4.1.1.2", "2.25.123456789012345678901234567890123", 0xB000),
])
def test_fast_c_store_response_matches_pynetdicom(message_id, sop_class, sop_uid, status):
    ours = LAST_COMMAND_FRAGMENT + c_store_rsp_command(message_id=message_id, sop_class_uid=sop_class,
                                                       sop_instance_uid=sop_uid, status=status)
    assert ours == pynetdicom_encoding(message_id, sop_class, sop_uid, status)


def _wrapped(sock):
    wrapper = GatewaySocket.__new__(GatewaySocket)  # only .socket is used by recv()
    wrapper.socket = sock
    return wrapper


def test_a_pdu_is_read_whole_across_partial_sends():
    a, b = socket.socketpair()
    payload = bytes(range(256)) * 1000  # 256 kB, more than one socket buffer
    sender = threading.Thread(target=lambda: [a.sendall(payload[i:i + 7000]) for i in range(0, len(payload), 7000)])
    sender.start()
    try:
        assert _wrapped(b).recv(len(payload)) == payload
    finally:
        sender.join()
        a.close()
        b.close()


def test_a_closed_connection_returns_what_arrived():
    a, b = socket.socketpair()
    a.sendall(b"\x04\x00\x00\x00")
    a.close()
    try:
        assert _wrapped(b).recv(6) == b"\x04\x00\x00\x00"  # short: pynetdicom then reports the closed transport
    finally:
        b.close()


def _pdv_item(context_id: int, control: int, fragment: bytes) -> bytes:
    return struct.pack(">IB", len(fragment) + 2, context_id) + bytes([control]) + fragment


def _p_data_tf(*items: bytes) -> bytearray:
    body = b"".join(items)
    return bytearray(struct.pack(">BBI", 0x04, 0, len(body)) + body)


def test_p_data_values_are_views_of_each_item_as_pynetdicom_decodes_them():
    from pynetdicom.pdu import P_DATA_TF

    pdu = _p_data_tf(_pdv_item(1, 0x03, b"command"), _pdv_item(3, 0x00, b"data fragment"), _pdv_item(3, 0x02, b"x"))
    ours = [(cid, bytes(v)) for cid, v in p_data_values(pdu)]
    theirs = P_DATA_TF()
    theirs.decode(bytes(pdu))
    assert ours == theirs.to_primitive().presentation_data_value_list
    assert ours == [(1, b"\x03command"), (3, b"\x00data fragment"), (3, b"\x02x")]


@pytest.mark.parametrize("pdu", [
    _p_data_tf(),  # no item
    _p_data_tf(_pdv_item(1, 0x02, b"abc"))[:-1],  # the item runs past the PDU
    _p_data_tf(_pdv_item(1, 0x02, b"abc"), b"\x00\x00"),  # bytes left that are no item
    _p_data_tf(struct.pack(">IB", 1, 1)),  # an item with a context ID and no data
])
def test_p_data_values_refuse_a_malformed_pdu(pdu):
    assert p_data_values(pdu) is None  # pynetdicom then decodes it and aborts the association
