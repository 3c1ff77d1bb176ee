"""Repository-level test packages (the Kubernetes API emulator lives in tests/k8s)."""
