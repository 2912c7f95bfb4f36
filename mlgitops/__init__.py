"""mlgitops: GitOps CI/CD for machine-learning models, driven by repository events."""
