import importlib.util
import os

import pytest

from conftest import REPO as ROOT
spec = importlib.util.spec_from_file_location(
    "update_readme", os.path.join(ROOT, "benchmarks", "update_readme.py"))
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)


def test_replaces_only_the_marked_section(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n%s\nold table\n%s\noutro\n" % (mod.START, mod.END))
    table = tmp_path / "latest.md"
    table.write_text("# tornado_c benchmarks (20260101T000000Z)\n\n| a | b |\n")
    mod.update(str(readme), str(table))
    text = readme.read_text()
    assert "old table" not in text
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert "Run 20260101T000000Z:" in text and "| a | b |" in text
    mod.update(str(readme), str(table))  # idempotent
    assert readme.read_text() == text


def test_refuses_a_readme_without_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    table = tmp_path / "latest.md"
    table.write_text("| a |\n")
    with pytest.raises(SystemExit):
        mod.update(str(readme), str(table))


def test_repository_readme_has_markers():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    assert mod.START in text and mod.END in text
