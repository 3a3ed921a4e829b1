"""Reading the desired state: a directory of JSON files, one VPN service
each, turned into a validated model or into errors that name the file and
the JSON path.

statefiles watches the directory and keeps each file's last valid
version; jsondoc decodes bounded bytes; checker and validation turn JSON
into the model, with Neutron's vocabulary (neutron); desired is the
namespace-by-namespace result; kept_copies keeps last valid copies on disk.

May import: vpnd.base, vpnd.system (safe reads, logging). Pure apart from
the file reads: no VICI, no netlink, no processes.
"""
