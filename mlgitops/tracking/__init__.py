"""Experiment tracking and model registries the team already runs (MLflow), kept in step
with what this tool decides: PR runs logged from the trusted parent process, registry
versions from the deployed ONNX bytes, aliases following the manifests in git."""
