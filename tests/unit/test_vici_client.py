"""A hung or absent charon never hangs vpnd."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from vpnd.drivers.vici_client import ViciClient
from vpnd.errors import DriverUnavailable


def test_a_charon_that_never_answers_times_out(tmp_path):
    path = str(tmp_path / "hung.vici")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    accepted = []
    t = threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True)
    t.start()
    client = ViciClient(path, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(DriverUnavailable, match="did not answer"):
        client.live_state()
    assert time.monotonic() - started < 5
    client.close()
    server.close()


def test_a_missing_socket_is_unavailable(tmp_path):
    with pytest.raises(DriverUnavailable, match="cannot reach charon"):
        ViciClient(str(tmp_path / "none.vici"), timeout=0.5).version()
