"""The man pages vpnd(8) and vpnd.yaml(5), written as roff from the
command's own parser and the configuration's key table (config.KEYS), so
that neither can say something `--help` or the parser does not.

`python -m vpnd.cli.manual DIR` writes DIR/man8/vpnd.8 and DIR/man5/vpnd.yaml.5
(scripts/install does, into /usr/local/share/man); `--config-table` prints
the table docs/configuration.md holds.
"""
from __future__ import annotations

import argparse
import os
import re
import sys

from vpnd.base import config

SOURCE = "vpnd"


def command_page(parser: argparse.ArgumentParser, version: str = "") -> str:
    """vpnd(8): every option and every subcommand of `parser`, with its help."""
    commands = _subcommands(parser)
    lines = [_title("VPND", 8, version, "System Administration"),
             ".SH NAME", r"vpnd \- IPsec VPN control plane: Neutron VPNaaS state files "
                         "to strongSwan charons",
             ".SH SYNOPSIS",
             rf".B {_escape(parser.prog)}", " ".join(_usage(a) for a in _options(parser))
             + r" \fICOMMAND\fR [\fIOPTION\fR ...]",
             ".SH DESCRIPTION",
             _text("vpnd watches a directory of JSON files, one VPN service per file in "
                   "the OpenStack Neutron VPNaaS model, runs one strongSwan charon per "
                   "router network namespace, and keeps every charon matching the files: "
                   "it loads and unloads only what changed and leaves every other tunnel "
                   "untouched. It reports each connection as ACTIVE, DOWN or ERROR, with "
                   "the reason."),
             ".SH OPTIONS"]
    for action in _options(parser):
        lines += _option(action)
    lines.append(".SH COMMANDS")
    for name, (summary, sub) in commands.items():
        usage = " ".join([rf"\fB{_escape(name)}\fR", *map(_usage, _options(sub))])
        lines += [".TP", usage, _text(summary)]
        for action in _options(sub):
            lines += [".RS"] + _option(action) + [".RE"]
    lines += [".SH FILES",
              ".TP", rf"\fI{_escape(config.DEFAULT_PATH)}\fR",
              _text("the daemon configuration; see vpnd.yaml(5)"),
              ".TP", rf"\fI{_escape(config.KEY['state_dir'].default)}/*.json\fR",
              _text("the state files, one VPN service each (mode 0600: they hold PSKs)"),
              ".TP", rf"\fI{_escape(config.KEY['run_dir'].default)}/status.json\fR",
              _text("the status `vpnd status` reads"),
              ".SH SEE ALSO", r".BR vpnd.yaml (5),", r".BR swanctl (8),",
              r".BR journalctl (1)", ".PP",
              _text("/usr/local/share/doc/vpnd/README.md and the reference under "
                    "/usr/local/share/doc/vpnd/docs/.")]
    return "\n".join(lines) + "\n"


def config_page(keys: tuple[config.Key, ...], version: str = "") -> str:
    """vpnd.yaml(5): every key in `keys`, with its type, default and meaning,
    and an example that sets each to its default."""
    lines = [_title("VPND.YAML", 5, version, "File Formats"),
             ".SH NAME", r"vpnd.yaml \- the vpnd daemon configuration",
             ".SH SYNOPSIS", rf"\fI{_escape(config.DEFAULT_PATH)}\fR",
             ".SH DESCRIPTION",
             _text("A YAML mapping of the keys below; a key written `charon.mode` is "
                   "`mode` in the mapping `charon`. Unknown keys and bad values stop vpnd "
                   "at start, each error naming the key. A missing default file means "
                   "all defaults; `vpnd --config FILE` reads another file. The key names "
                   "are a public contract."),
             ".SH KEYS"]
    for section, members in _sections(keys).items():
        lines.append(f'.SS "{section or "Top level"}"')
        for key in members:
            lines += [".TP", rf"\fB{_escape(key.name)}\fR ({_escape(_kind(key))}; "
                             rf"default \fB{_escape(_value(key.default))}\fR)",
                      _text(key.meaning)]
    lines += [".SH EXAMPLE", _text("Every key at its default:"), ".PP", ".RS", ".nf",
              *(_escape(line) for line in example(keys).splitlines()), ".fi", ".RE",
              ".SH SEE ALSO", r".BR vpnd (8)", ".PP",
              _text("/usr/local/share/doc/vpnd/docs/configuration.md.")]
    return "\n".join(lines) + "\n"


def example(keys: tuple[config.Key, ...]) -> str:
    """A vpnd.yaml that sets every key to its default, as YAML."""
    out = []
    for section, members in _sections(keys).items():
        if section:
            out.append(f"{section}:")
        for key in members:
            indent = "  " if section else ""
            out.append(f"{indent}{key.name.rpartition('.')[2]}: {_yaml(key.default)}")
    return "\n".join(out) + "\n"


def config_table(keys: tuple[config.Key, ...]) -> str:
    """The keys as a Markdown table, for docs/configuration.md."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key in keys:
        default = "unset" if key.default is None else f"`{_value(key.default)}`"
        rows.append(f"| `{key.name}` | {_kind(key, '`')} | {default} | {key.meaning} |")
    return "\n".join(rows) + "\n"


def _title(name: str, section: int, version: str, manual: str) -> str:
    source = f"{SOURCE} {version}".strip()
    # No hyphenation: a key or a path broken at a line's end cannot be
    # searched for or copied.
    return f'.TH {name} {section} "" "{source}" "{manual}"\n.nh'


def _subcommands(parser) -> dict[str, tuple[str, argparse.ArgumentParser]]:
    # argparse keeps a subcommand's help on a pseudo-action beside its parser.
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {a.dest: a.help or "" for a in action._choices_actions}
            return {name: (summaries.get(name, ""), sub)
                    for name, sub in action.choices.items()}
    return {}


def _options(parser) -> list[argparse.Action]:
    return [a for a in parser._actions
            if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


def _metavar(action) -> str:
    return action.metavar or (action.dest.upper() if action.option_strings else action.dest)


def _usage(action) -> str:
    """One option or argument as a synopsis shows it."""
    if not action.option_strings:
        word = rf"\fI{_escape(_metavar(action))}\fR"
        return rf"[{word} ...]" if action.nargs in ("*", "?") else word
    flag = rf"\fB{_escape(action.option_strings[-1])}\fR"
    if action.nargs != 0:
        flag += rf" \fI{_escape(_metavar(action))}\fR"
    return flag if action.required else f"[{flag}]"


def _option(action) -> list[str]:
    help_text = action.help or ""
    if "%(" in help_text:
        help_text = help_text % {"default": action.default, "prog": "vpnd"}
    head = ", ".join(rf"\fB{_escape(s)}\fR" for s in action.option_strings)
    if action.nargs != 0:
        head = (head + " " if head else "") + rf"\fI{_escape(_metavar(action))}\fR"
    return [".TP", head, _text(help_text)]


def _sections(keys) -> dict[str, list[config.Key]]:
    sections: dict[str, list[config.Key]] = {}
    for key in keys:
        sections.setdefault(key.name.rpartition(".")[0], []).append(key)
    return dict(sorted(sections.items(), key=lambda item: item[0] != ""))


def _kind(key: config.Key, quote: str = "") -> str:
    if key.choices:
        return "one of " + ", ".join(f"{quote}{c}{quote}" for c in key.choices)
    return key.type


def _value(value) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "{}" if value == {} else str(value)


def _yaml(value) -> str:
    return "null" if value is None else _value(value)


def _escape(text: str) -> str:
    """Text roff takes literally: a backslash and a minus sign as typed."""
    return str(text).replace("\\", r"\e").replace("-", r"\-")


def _text(text: str) -> str:
    """One line of running text; `code` in bold. A line that begins with
    a dot or a quote would be read as a request: \\& keeps it text."""
    line = re.sub(r"`([^`]*)`", r"\\fB\1\\fR", _escape(text))
    return rf"\&{line}" if line[:1] in (".", "'") else line


def main(argv: list[str] | None = None) -> int:
    from vpnd.cli import build_parser
    args = argparse.ArgumentParser(prog="python -m vpnd.cli.manual", description=__doc__)
    args.add_argument("dir", nargs="?", help="write man8/vpnd.8 and man5/vpnd.yaml.5 here")
    args.add_argument("--config-table", action="store_true",
                      help="print docs/configuration.md's table of keys")
    opts = args.parse_args(argv)
    if opts.config_table:
        sys.stdout.write(config_table(config.KEYS))
        return 0
    if not opts.dir:
        args.error("give a DIR or --config-table")
    version = _version()
    for section, name, text in ((8, "vpnd.8", command_page(build_parser(), version)),
                                (5, "vpnd.yaml.5", config_page(config.KEYS, version))):
        path = os.path.join(opts.dir, f"man{section}", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        print(path)
    return 0


def _version() -> str:
    from importlib import metadata
    try:
        return metadata.version("vpnd")
    except metadata.PackageNotFoundError:
        return ""


if __name__ == "__main__":
    sys.exit(main())
