"""Reading the desired state: a directory of JSON files, one VPN service
each, turned into a validated model or into errors that name the file and
the JSON path.

statefiles (StateDir) is the directory and its bookkeeping; a file is read
by safe_read and judged by one_file: jsondoc decodes bounded bytes, and
validation (the service), connection_checks and policy_checks turn JSON
into the model through checker's typed fields, with ike_identities (one
peer per id) and Neutron's vocabulary (neutron). file_state is what is
held of one file, id_claims which file keeps a clashing id, desired the
namespace-by-namespace result, kept_copies the last valid copies on disk.

May import: vpnd.base, vpnd.system (safe reads, logging). Pure apart from
the file reads (statefiles, safe_read, one_file, kept_copies): no VICI, no
netlink, no processes.
"""
