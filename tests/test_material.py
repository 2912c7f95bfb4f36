"""The vendored GitHub material (tests/github/) is exactly what SHA256SUMS lists: no file
edited, added or lost, and the README names where each part came from."""

from __future__ import annotations

import hashlib

from tests.helpers import GITHUB_MATERIAL

OURS = {"README.md", "SHA256SUMS", "fetch.py"}  # written here, not vendored


def listed() -> dict[str, str]:
    entries = {}
    for line in (GITHUB_MATERIAL / "SHA256SUMS").read_text().splitlines():
        digest, rel = line.split("  ", 1)
        assert len(digest) == 64 and rel not in entries, line
        entries[rel] = digest
    return entries


def test_every_vendored_file_matches_its_sha256() -> None:
    entries = listed()
    on_disk = {p.relative_to(GITHUB_MATERIAL).as_posix() for p in GITHUB_MATERIAL.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert on_disk - OURS == set(entries)
    changed = [rel for rel, digest in entries.items() if hashlib.sha256((GITHUB_MATERIAL / rel).read_bytes()).hexdigest() != digest]
    assert changed == []


def test_the_material_is_what_the_tests_need_and_no_more() -> None:
    entries = listed()
    assert len(entries) == 97
    assert sum(rel.startswith("webhooks/octokit-webhooks/api.github.com/") for rel in entries) == 78
    assert sum(rel.startswith("pygithub-replaydata/") and rel.endswith(".txt") for rel in entries) == 13
    assert {rel for rel in entries if rel.startswith("openapi/")} == {"openapi/api.github.com.subset.json", "openapi/LICENSE-octokit-openapi"}
    # Each upstream part keeps its licence beside it.
    assert {"webhooks/octokit-webhooks/LICENSE", "pygithub-replaydata/COPYING", "pygithub-replaydata/COPYING.LESSER"} <= set(entries)


def test_the_readme_names_each_package_and_version() -> None:
    readme = (GITHUB_MATERIAL / "README.md").read_text()
    fetch = (GITHUB_MATERIAL / "fetch.py").read_text()
    for name in ("@octokit/webhooks-examples@7.6.1", "@octokit/openapi@23.0.2", "PyGithub==2.10.0", "prettier@3.10.1"):
        assert f"`{name}`" in readme, name
        assert f'"{name}"' in fetch, name  # the versions fetch.py rebuilds from are the ones named
    assert "@3a58428a" in readme and "github/docs @0c4564ac" in readme
