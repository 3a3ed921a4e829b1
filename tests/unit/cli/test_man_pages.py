"""vpnd(8) and vpnd.yaml(5), rendered by the real man: they name every
subcommand, option and config key, render without a groff warning, and
cannot drift from the parser and the config table they are written from."""
import argparse
import dataclasses
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from vpnd.base import config
from vpnd.cli import manual
from vpnd.cli import build_parser
from vpnd.base.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def rendered(page: str, tmp_path: Path, name: str = "page.1") -> str:
    path = tmp_path / name
    path.write_text(page)
    env = {**os.environ, "MANWIDTH": "100", "COLUMNS": "100", "LANG": "C.UTF-8"}
    env.pop("MAN_KEEP_FORMATTING", None)
    done = subprocess.run(["man", "--warnings", "-l", str(path)], env=env,
                          capture_output=True, text=True, timeout=30, check=True)
    assert done.stderr == ""
    return done.stdout


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return actions[0].choices


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    return [s for a in parser._actions if not isinstance(a, argparse._HelpAction)
            for s in a.option_strings]


def test_vpnd_8_names_every_subcommand_and_its_options(tmp_path):
    parser = build_parser()
    text = rendered(manual.command_page(parser), tmp_path)
    commands = subcommands(parser)
    assert {"run", "check", "plan", "status", "health"} <= set(commands)
    for option in option_strings(parser):
        assert option in text
    for name, sub in commands.items():
        assert f"\n       {name}" in text, f"{name} has no entry"
        for option in option_strings(sub):
            assert option in text, f"{name} {option}"


def test_vpnd_8_tells_each_subcommand_what_help_says(tmp_path):
    parser = build_parser()
    text = " ".join(rendered(manual.command_page(parser), tmp_path).split())
    sub = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)][0]
    for choice in sub._choices_actions:
        assert " ".join(choice.help.split()) in text, choice.dest


def test_every_option_has_help_for_the_page():
    parser = build_parser()
    for sub in [parser, *subcommands(parser).values()]:
        for action in sub._actions:
            if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                assert action.help, f"{sub.prog} {action.dest}: no help"


def test_vpnd_yaml_5_names_every_key_with_its_default(tmp_path):
    text = rendered(manual.config_page(config.KEYS), tmp_path)
    for key in config.KEYS:
        assert key.name in text
        assert f"{key.name} (" in text
    assert "state_file_max_bytes (bytes, 1024 to 1 GiB; default 1048576)" in text
    assert "charon.mode (one of spawn, systemd, external; default spawn)" in text


@pytest.mark.parametrize("write", [
    lambda: manual.command_page(build_parser(), "1.0"),
    lambda: manual.config_page(config.KEYS, "1.0"),
], ids=["vpnd.8", "vpnd.yaml.5"])
def test_groff_has_no_warning(write, tmp_path):
    page = tmp_path / "page"
    page.write_text(write())
    done = subprocess.run(["groff", "-ww", "-man", "-z", str(page)],
                          capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stderr) == (0, "")


def test_text_that_looks_like_roff_is_shown_as_typed(tmp_path):
    keys = (config.Key("odd", "word", "a-b", ".SH not a section, back\\slash 'quote --x"),)
    text = rendered(manual.config_page(keys), tmp_path)
    assert ".SH not a section, back\\slash 'quote --x" in text
    assert "default a-b" in text


def test_the_example_sets_every_key_to_the_parsers_default():
    example = yaml.safe_load(manual.example(config.KEYS))
    assert config.parse(example) == config.Config()


def fields(cls, prefix="") -> dict[str, object]:
    """Every leaf of the config dataclasses, dotted, with its default."""
    out = {}
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            out |= fields(type(default), f"{prefix}{f.name}.")
        else:
            out[prefix + f.name] = default
    return out


def test_every_config_field_is_in_the_table_with_its_default():
    # A field the table lacks would be a key the parser refuses and the
    # page does not name: adding one means describing it.
    table = {k.name: k.default for k in config.KEYS}
    assert fields(config.Config) == table


def test_every_key_has_a_type_and_a_one_line_meaning():
    for key in config.KEYS:
        assert key.type and key.meaning and "\n" not in key.meaning, key.name
        assert key.default in key.choices or not key.choices, key.name


def test_a_key_left_out_of_the_table_is_refused(monkeypatch):
    kept = tuple(k for k in config.KEYS if k.name not in ("state_owner", "charon.libipsec"))
    monkeypatch.setattr(config, "KEYS", kept)
    with pytest.raises(ConfigError, match="state_owner: unknown key"):
        config.parse({"state_owner": "root"})
    with pytest.raises(ConfigError, match="charon.libipsec: unknown key"):
        config.parse({"charon": {"libipsec": True}})


def test_docs_configuration_holds_the_table():
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert manual.config_table(config.KEYS) in page, \
        "paste `python -m vpnd.cli.manual --config-table` into docs/configuration.md"


def test_python_m_vpnd_manual_writes_both_pages(tmp_path):
    assert manual.main([str(tmp_path)]) == 0
    assert (tmp_path / "man8" / "vpnd.8").read_text().startswith(".TH VPND 8")
    assert (tmp_path / "man5" / "vpnd.yaml.5").read_text().startswith(".TH VPND.YAML 5")
    env = {**os.environ, "MANWIDTH": "100", "MANPATH": str(tmp_path)}
    found = subprocess.run(["man", "-w", "vpnd.yaml"], env=env, capture_output=True,
                           text=True, timeout=30)
    assert found.stdout.strip() == str(tmp_path / "man5" / "vpnd.yaml.5")
