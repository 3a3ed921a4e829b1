"""The parsed-once addresses and networks: the same answers as netaddr's,
the memo bounded."""
import netaddr
import pytest

from vpnd.state import ip_parse


@pytest.fixture(autouse=True)
def empty_memo():
    ip_parse.address.kept.cache_clear()
    ip_parse.network.kept.cache_clear()
    yield
    ip_parse.address.kept.cache_clear()
    ip_parse.network.kept.cache_clear()


@pytest.mark.parametrize("text", ["198.51.100.7", "2001:db8::1", "0.0.0.0", "::"])
def test_an_address_is_netaddrs_and_the_second_read_is_the_same_object(text):
    first = ip_parse.address(text)
    assert first == netaddr.IPAddress(text, flags=netaddr.INET_PTON)
    assert ip_parse.address(text) is first


@pytest.mark.parametrize("text", ["", "198.51.100", "0x0", "1.2.3.4.5", "host.example",
                                  "198.51.100.7/32", " 198.51.100.7"])
def test_what_inet_pton_refuses_is_no_address_every_time(text):
    assert ip_parse.address(text) is None
    assert ip_parse.address(text) is None  # from the memo: still refused


def test_networks_as_netaddr_reads_them_and_bad_ones_none():
    assert ip_parse.network("198.51.100.0/24") == netaddr.IPNetwork("198.51.100.0/24")
    assert ip_parse.network("2001:db8::/32").version == 6
    assert ip_parse.network("198.51.100.0/33") is None
    assert ip_parse.network("198.51.100.0/33") is None


def test_the_memo_is_bounded_and_keeps_no_long_text():
    for i in range(3 * ip_parse.MEMO):
        ip_parse.address(f"198.18.{i // 256}.{i % 256}")
    assert 0 < ip_parse.address.kept.cache_info().currsize <= ip_parse.MEMO
    ip_parse.address.kept.cache_clear()
    long = "1" * (ip_parse.LONGEST + 1)
    assert ip_parse.address(long) is None and ip_parse.network(long) is None
    assert ip_parse.address.kept.cache_info().currsize == 0
    assert ip_parse.network.kept.cache_info().currsize == 0
