"""Copy benchmarks/results/latest.md into README.md between the bench markers.

scripts/bench.sh runs this after a complete run, so the README always shows
the numbers of the latest run (whatever they are)."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START = "<!-- bench:start (written by benchmarks/update_readme.py) -->"
END = "<!-- bench:end -->"


def update(readme_path, table_path):
    with open(table_path) as f:
        lines = f.read().strip().splitlines()
    if lines and lines[0].startswith("# "):
        # The table file's own title becomes a sentence in the README.
        lines[0] = "Run %s:" % lines[0].split("(", 1)[-1].rstrip(")")
    with open(readme_path) as f:
        text = f.read()
    if START not in text or END not in text:
        raise SystemExit("README has no bench markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = head + START + "\n" + "\n".join(lines) + "\n" + END + tail
    with open(readme_path, "w") as f:
        f.write(new)


if __name__ == "__main__":
    readme = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "README.md")
    table = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "benchmarks", "results", "latest.md")
    update(readme, table)
