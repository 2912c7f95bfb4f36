"""Attack: a template reaches Python (os, the environment, files) or a PR rewrites what
the bot says about it.

Templates rendered in a plain Jinja2 environment: a PR that only added
`{{ lipsum.__globals__.os.environ.get('GITHUB_TOKEN') }}` under report.templates posted
the token in its comment, and os.popen and open() ran.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from mlgitops.run import compute
from mlgitops.config.loader import parse_config
from mlgitops.errors import ConfigError
import jinja2

from mlgitops.report.render import render_comment
from tests.helpers import GitRepo
from tests.test_render import make_report

TOKEN = "ghs_" + "Q9w8E7r6T5" * 4
# attack -> (template line, what the run says)
ATTACKS = {
    "lipsum globals": ("{{ lipsum.__globals__.os.environ.get('GITHUB_TOKEN') }}{{ lipsum.__globals__.os.popen('touch PWNED').read() }}", "'lipsum' is undefined"),
    "cycler init globals": ("{{ cycler.__init__.__globals__.os.environ['GITHUB_TOKEN'] }}{{ cycler.__init__.__globals__.os.popen('touch PWNED') }}", "access to attribute '__init__' of 'StrictUndefined' object is unsafe."),
    "str subclasses": ("{% for c in ''.__class__.__mro__[1].__subclasses__() %}{% if c.__name__ == 'Popen' %}{{ c(['touch', 'PWNED']) }}{% endif %}{% endfor %}", "access to attribute '__class__' of 'str' object is unsafe."),
    "flask-style config": ("{{ config.__class__.__init__.__globals__['os'].environ['GITHUB_TOKEN'] }}", "access to attribute '__init__' of 'StrictUndefined' object is unsafe."),
    "template context": ("{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('touch PWNED') }}", "access to attribute '_TemplateReference__context' of 'TemplateReference' object is unsafe."),
    "report methods": ("{{ report.to_dict.__globals__['os'].environ['GITHUB_TOKEN'] }}", "access to attribute '__globals__' of 'method' object is unsafe."),
    "filter globals": ("{{ (report | attr('__class__')).__init__.__globals__ }}", "access to attribute '__init__' of 'StrictUndefined' object is unsafe."),
    "mutation and open": ("{{ report.notes.append('x') }}{{ open('/etc/passwd').read() }}", "access to attribute 'append' of 'list' object is unsafe."),
}
CONFIG = """\
    name: breast-cancer
    data: {path: data.csv, target: y}
    training: {estimator: sklearn.linear_model.LogisticRegression}
    report: {templates: tpl}
    """


def loaded(root: Path, display: str = "mlops.yaml") -> object:
    return parse_config(textwrap.dedent(CONFIG), root / "mlops.yaml", display)


@pytest.mark.parametrize(("attack", "why"), ATTACKS.values(), ids=list(ATTACKS))
def test_template_cannot_reach_python(attack: str, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "pr_comment.md.j2").write_text("{{ marker }}\n" + attack + "\n")
    cfg = loaded(tmp_path)
    plan = SimpleNamespace(baseline=SimpleNamespace(cfg=None), event=SimpleNamespace(base_sha=None), root=tmp_path, config_rel="mlops.yaml")
    with pytest.raises(ConfigError) as err:
        compute.render(make_report(), cfg, plan)  # type: ignore[arg-type]
    assert err.value.exit_code == 2
    assert err.value.message == f"mlops.yaml:4:21: report.templates: template pr_comment.md.j2 line 2 failed: {why}"
    assert TOKEN not in err.value.message
    assert not (tmp_path / "PWNED").exists()


def test_the_reproduced_attack_neither_posts_the_token_nor_runs_a_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pr_comment.md.j2").write_text("{{ marker }}\n" + ATTACKS["lipsum globals"][0] + "\n")
    body = None
    with pytest.raises(jinja2.TemplateError):
        body = render_comment(make_report(), tmp_path)
    assert body is None and not (tmp_path / "PWNED").exists()


def test_a_pr_cannot_change_the_templates_its_comment_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The base ref's templates (read from the base commit) render the PR's comment."""
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    repo = GitRepo(tmp_path)
    repo.gen({"mlops.yaml": CONFIG, "tpl/pr_comment.md.j2": "{{ marker }}\nbase says {{ report.verdict }}\n"})
    base_sha = repo.commit("base")
    repo.branch("pr").gen({"tpl/pr_comment.md.j2": "{{ marker }}\n" + ATTACKS["lipsum globals"][0] + "\n"}).commit("evil")
    from mlgitops.report.render import run_templates

    base_cfg, cfg = loaded(tmp_path, "mlops.yaml@main"), loaded(tmp_path)
    body = render_comment(make_report(), templates=run_templates(cfg, base_cfg, base_sha, tmp_path, "mlops.yaml"))  # type: ignore[arg-type]
    assert body == "<!-- mlgitops:pr-report name=breast-cancer -->\nbase says pass\n"


def test_a_pr_that_adds_templates_gets_the_built_in_comment(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path)
    repo.gen({"mlops.yaml": CONFIG.replace("    report: {templates: tpl}\n", "")})
    base_sha = repo.commit("base")
    repo.branch("pr").gen({"mlops.yaml": CONFIG, "tpl/pr_comment.md.j2": "{{ marker }}\nall good, merge me\n"}).commit("pr")
    from mlgitops.report.render import run_templates

    base_cfg = parse_config(textwrap.dedent(CONFIG.replace("    report: {templates: tpl}\n", "")), tmp_path / "mlops.yaml", "mlops.yaml@main")
    body = render_comment(make_report(), templates=run_templates(loaded(tmp_path), base_cfg, base_sha, tmp_path, "mlops.yaml"))  # type: ignore[arg-type]
    assert "all good, merge me" not in body
    assert body.startswith("<!-- mlgitops:pr-report name=breast-cancer -->\n### ✅ mlops gate passed: `breast-cancer`\n")
    assert "- Custom templates come from the base ref: this comment uses the built-in templates; template changes made on this branch apply after merge.\n" in body
