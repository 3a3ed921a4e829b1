"""A VICI socket path a unix socket cannot hold is vpnd's own clear error,
not a charon that never answers (found running Neutron's 44-character
qrouter-<uuid> namespaces under a deep test run_dir)."""
import pytest

from vpnd.drivers.charon_instances import SOCKET_PATH_MAX
from vpnd.drivers.charon_process import CharonSpawner
from vpnd.base.errors import DriverUnavailable


def test_a_socket_path_too_long_for_a_unix_socket_is_refused_before_launch(tmp_path):
    run_dir = tmp_path / ("d" * 60)
    ns = "qrouter-0c90a124-e52c-4cb6-a8b1-f400aceb886b"
    spawner = CharonSpawner(str(run_dir), True)
    assert len(str(spawner.socket_path(ns))) > SOCKET_PATH_MAX
    with pytest.raises(DriverUnavailable, match=r"more than the 107 a unix socket takes"):
        spawner.start(ns)
    assert not (run_dir / "charon" / ns).exists()  # nothing launched, nothing made


def test_the_default_run_dir_fits_neutrons_namespaces():
    spawner = CharonSpawner("/run/vpnd", True)
    ns = "qrouter-0c90a124-e52c-4cb6-a8b1-f400aceb886b"
    assert len(str(spawner.socket_path(ns))) <= SOCKET_PATH_MAX
