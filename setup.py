import re

from setuptools import find_packages, setup

setup(
    name="vpnd",
    version=re.search(r'__version__ = "([^"]+)"', open("vpnd/__init__.py").read())[1],
    description="On-node IPsec VPN control plane: Neutron VPNaaS JSON in, strongSwan tunnels out",
    python_requires=">=3.11",
    packages=find_packages(include=["vpnd", "vpnd.*"]),
    install_requires=[
        "vici>=5.9,<7",
        "pyroute2>=0.7,<0.10",
        "netaddr>=0.8,<2",
        "sdnotify>=0.3.2,<0.4",
        "structlog>=23.1,<27",
        "PyYAML>=6.0,<7",
    ],
    extras_require={"test": ["pytest>=7.4,<10", "jsonschema>=4.17,<5",
                             # The official Prometheus client: the oracle vpnd's
                             # own exposition is checked against, byte for byte
                             # (vpnd does not import it: 7f31d8f); its content
                             # type, version=1.0.0, is the one vpnd serves.
                             "prometheus_client>=0.26,<1",
                             # Layering contracts (.importlinter), checked by the suite.
                             "import-linter>=2.0,<3",
                             # The Kubernetes API schemas, bundled: deploy/ is checked offline.
                             "kubernetes-validate>=1.28,<2"],
                    # vpnd.neutron_driver runs inside neutron's L3 or OVN VPN
                    # agent, which brings neutron-vpnaas with it; vpnd itself
                    # never imports it (.importlinter), so it is no dependency.
                    # scripts/setup-neutron tests it with 29.0.0, pinned.
                    "neutron": ["neutron-vpnaas>=29.0.0"]},
    entry_points={"console_scripts": ["vpnd=vpnd.cli:main"]},
)
