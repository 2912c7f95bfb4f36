"""The README and docs/: short README, every link resolves, and the configuration
reference held to `mlops schema` both ways (every key documented, every documented
key real)."""

from __future__ import annotations

import re
from pathlib import Path

from mlgitops.config.loader import json_schema

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]+\]\(([^)\s]+)\)")


FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def prose(text: str) -> list[str]:
    """The lines outside fenced code blocks, as CommonMark fences them: a run of 3+
    backticks (or tildes) whose info string holds no backtick opens one (so a line
    starting with ```` ```mermaid ```` is inline code, not a fence); the same character,
    at least as many, and nothing else closes it."""
    out, fence = [], None
    for line in text.splitlines():
        m = FENCE.match(line)
        if fence is None:
            if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
                fence = m.group(1)
                continue
            out.append(line)
        elif m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not m.group(2).strip():
            fence = None
    return out


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation but '-' dropped, spaces to '-'."""
    out = set()
    for line in prose(path.read_text(encoding="utf-8")):
        m = re.match(r"^#{1,6} (.+)$", line)
        if m:
            out.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-"))
    return out


def test_the_readme_is_short_and_points_at_docs() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) < 300
    for page in ("running", "configuration", "deploy", "github", "operating", "service", "security", "limits"):
        assert f"(docs/{page}.md)" in text, page


def test_every_relative_link_and_anchor_resolves() -> None:
    broken = []
    for page in PAGES:
        text = "\n".join(prose(page.read_text(encoding="utf-8")))
        for target in LINK.findall(text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            file, _, anchor = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []


def test_fences_are_read_as_github_reads_them() -> None:
    text = "a\n```yaml\n# not a heading\n```\n```` ```mermaid ```` blocks\n# Heading\n````md\n```\n# inside\n````\nz"
    assert prose(text) == ["a", "```` ```mermaid ```` blocks", "# Heading", "z"]


def schema_keys() -> set[str]:
    schema = json_schema()
    defs = schema["$defs"]
    out: set[str] = set()

    def resolve(node: dict) -> dict:
        while "$ref" in node:
            node = defs[node["$ref"].split("/")[-1]]
        return node

    def walk(node: dict, path: list[str]) -> None:
        n = resolve(node)
        for sub in n.get("anyOf", []) + n.get("oneOf", []) + n.get("allOf", []):
            walk(sub, path)
        if n.get("type") == "array" and "items" in n:
            walk(n["items"], path + ["[]"])
        for key, value in n.get("properties", {}).items():
            step = "METRIC" if path == ["gates"] else key  # one row documents every metric's gate
            name = ".".join(path + [step]).replace(".[]", "[]")
            if name not in out:
                out.add(name)
                walk(value, path + [step])
        extra = n.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            walk(extra, path + [{"environments": "ENV", "columns": "COLUMN"}.get(path[-1], "NAME")])

    walk(schema, [])
    return out


def documented_keys() -> set[str]:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    table = text.split("## Every key", 1)[1]
    return set(re.findall(r"^\| `([^`]+)` \|", table, flags=re.M))


def test_the_configuration_reference_documents_exactly_the_schema() -> None:
    schema, documented = schema_keys(), documented_keys()
    assert sorted(schema - documented) == [], "keys in `mlops schema` missing from docs/configuration.md"
    assert sorted(documented - schema) == [], "keys documented in docs/configuration.md that `mlops schema` does not have"
    assert {"registry.url", "deploy.environments.ENV.files[].key", "gates.METRIC.max_drop_pct"} <= documented
