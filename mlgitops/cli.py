"""The `mlops` command: the group and its commands (one thin module each, in
``mlgitops.commands``). Heavy imports (pandas, scikit-learn, Prefect) happen inside the
commands' functions, so `mlops --help` and `mlops validate` stay fast."""

from __future__ import annotations

import click

from mlgitops.commands import ALL


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mlgitops", prog_name="mlops")
def main() -> None:
    """GitOps CI/CD for ML models: train, gate, comment, export, promote.

    Exit codes: 0 pass, 1 a gate failed, 2 invalid input, 3 internal error.
    """


for _command in ALL:
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
