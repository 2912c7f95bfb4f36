"""The MLflow Model Registry follows git (``tracking.mlflow``).

* The deploy (a push to the default branch) registers a model version from the very
  ONNX bytes it registered in our own registry, tagged ``sha256``; the same bytes are
  registered once.
* Every such push then sets each environment's alias (``staging``, ``production``, ...)
  to the version whose ``sha256`` tag equals the environment's pin: merging a
  promotion or rollback PR moves the alias. Git is the source of truth.
* ``mlops status`` reports an alias whose version's ``sha256`` is not the pin's (moved
  by hand in MLflow): the next deploy moves it back.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgitops.tracking.connect import Server, Unavailable, connect, failure, quiet

if TYPE_CHECKING:  # pragma: no cover
    from mlgitops.config.loader import LoadedConfig
    from mlgitops.deploy.registry import Registry, Version

SHA_TAG = "sha256"
TAG = "mlgitops."


def follow_deploy(cfg: LoadedConfig, targets: dict[str, Any], record: Version | None, registry: Registry, git_sha: str | None) -> list[str]:
    """Register ``record``'s ONNX (when it has one) and move every environment's alias
    to its pin; the lines say what changed (for the deploy's details). Never raises:
    MLflow follows the deploy, it does not gate it."""
    conf = cfg.config.tracking.mlflow
    if conf is None:
        return []
    name = cfg.config.name
    try:
        with quiet():
            server = connect()
            lines = []
            if record is not None and record.deployable is not None:
                lines.append(register(server, name, record, registry, conf.experiment, git_sha))
            for env, target in targets.items():
                lines.append(follow_pin(server, name, env, _pin(target)))
    except Unavailable as exc:
        return [f"MLflow: not updated: {exc}"]
    except Exception as exc:  # noqa: BLE001 - MLflow's client raises many kinds
        return [f"MLflow: not updated: {failure(exc)}"]
    return [line for line in lines if line]


def register(server: Server, name: str, record: Version, registry: Registry, experiment: str, git_sha: str | None) -> str:
    """The MLflow version holding ``record``'s ONNX bytes: found by its sha256 tag, else
    created (a run in ``experiment`` carries the file)."""
    from mlgitops.tracking.mlflow_runs import _experiment

    client = server.client
    sha = record.deployable.sha256  # type: ignore[union-attr]
    found = versions_with(server, name, sha)
    if found:
        return f"MLflow: {name} version {found[0].version} already holds these bytes (sha256 {sha[:12]})"
    data = registry.load(record)  # verified against its sha256
    try:
        client.get_registered_model(name)
    except Exception:  # noqa: BLE001 - RESOURCE_DOES_NOT_EXIST
        client.create_registered_model(name, tags={TAG + "managed_by": "mlgitops"}, description="Registered by mlgitops from the deployed ONNX bytes; aliases follow the deploy manifests in git.")
    lineage = record.lineage or {}
    tags = {
        "mlflow.runName": f"{name} v{record.version} deploy",
        TAG + "side": "deploy",
        TAG + "registry_version": str(record.version),
        TAG + "git_sha": str(git_sha or lineage.get("git_sha") or ""),
        TAG + "model_key": str(lineage.get("model_key") or ""),
        TAG + "data_sha256": str(lineage.get("data_sha256") or ""),
        TAG + "onnx_sha256": sha,
    }
    run = client.create_run(_experiment(client, experiment), tags={k: v for k, v in tags.items() if v})
    with tempfile.TemporaryDirectory(prefix="mlops-mlflow-") as tmp:
        path = Path(tmp) / "model.onnx"
        path.write_bytes(data)
        client.log_artifact(run.info.run_id, str(path), "model")
    metrics = {k: v for k, v in (record.metrics or {}).items() if isinstance(v, (int, float))}
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, float(value))
    client.set_terminated(run.info.run_id, "FINISHED")
    version_tags = {SHA_TAG: sha, TAG + "registry_version": str(record.version), TAG + "git_sha": tags[TAG + "git_sha"]}
    created = client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id, tags={k: v for k, v in version_tags.items() if v}, description=f"{name} v{record.version} of the mlgitops registry (ONNX, sha256 {sha})")
    return f"MLflow: registered {name} version {created.version} (sha256 {sha[:12]})"


def versions_with(server: Server, name: str, sha256: str) -> list[Any]:
    """The MLflow versions of ``name`` whose sha256 tag is ``sha256``, oldest first."""
    found = server.client.search_model_versions(f"name = '{_quoted(name)}' and tag.{SHA_TAG} = '{_quoted(sha256)}'")
    return sorted(found, key=lambda v: int(v.version))


def follow_pin(server: Server, name: str, env: str, pin: Any) -> str:
    """Point alias ``env`` at the version whose sha256 is the pin's ("" when it already does)."""
    if pin is None:
        return ""
    client = server.client
    found = versions_with(server, name, pin.sha256)
    if not found:
        return f"MLflow: alias `{env}` not moved: no version of {name} has sha256 {pin.sha256[:12]} (the model pinned for {env} was registered before tracking.mlflow was set)"
    mine = [v for v in found if (v.tags or {}).get(TAG + "registry_version") == str(pin.version)]
    chosen = (mine or found)[0]
    current = _alias_version(server, name, env)
    if current is not None and (current.tags or {}).get(SHA_TAG) == pin.sha256:
        return ""
    client.set_registered_model_alias(name, env, chosen.version)
    was = f" (was version {current.version})" if current is not None else ""
    return f"MLflow: alias `{env}` of {name} -> version {chosen.version} (sha256 {pin.sha256[:12]}, pinned for {env}){was}"


def alias_status(cfg: LoadedConfig, rows: list[dict[str, Any]]) -> None:
    """For `mlops status`: each row (an environment) gets ``mlflow``: where its alias
    points, and whether that is the pin. Unreachable: one line on every row."""
    conf = cfg.config.tracking.mlflow
    if conf is None:
        return
    name = cfg.config.name
    try:
        with quiet():
            server = connect()
            for row in rows:
                row["mlflow"] = _row_status(server, name, row)
    except (Unavailable, Exception) as exc:  # noqa: BLE001
        why = str(exc) if isinstance(exc, Unavailable) else failure(exc)
        for row in rows:
            row["mlflow"] = f"not checked: {why}"


def _row_status(server: Server, name: str, row: dict[str, Any]) -> str:
    env, pinned = row["environment"], row.get("sha256")
    current = _alias_version(server, name, env)
    if current is None:
        return f"no alias `{env}`" + (" (the next deploy sets it)" if pinned else "")
    sha = (current.tags or {}).get(SHA_TAG) or "?"
    if pinned is None:
        return f"alias `{env}` -> version {current.version} (sha256 {sha[:12]}), but nothing is pinned for {env}"
    if sha != pinned:
        return f"alias `{env}` was moved by hand: it points at version {current.version} (sha256 {sha[:12]}), not the pin (sha256 {pinned[:12]}); git is the source of truth, the next deploy moves it back"
    return f"alias `{env}` -> version {current.version} (the pin)"


def _alias_version(server: Server, name: str, alias: str) -> Any:
    try:
        return server.client.get_model_version_by_alias(name, alias)
    except Exception as exc:  # noqa: BLE001 - RESOURCE_DOES_NOT_EXIST: no such alias or model
        if "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or "not found" in str(exc).lower() or "does not exist" in str(exc).lower():
            return None
        raise


def _pin(target: Any) -> Any:
    from mlgitops.deploy.manifest import ManifestError

    try:
        return target.pin()
    except ManifestError:
        return None


def _quoted(text: str) -> str:
    return text.replace("'", "\\'")
