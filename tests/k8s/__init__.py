"""Kubernetes API emulator and fake FLUIDOS/Liqo controllers for KubernetesFederation tests."""
