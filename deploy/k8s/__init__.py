"""Kubernetes manifests (kustomize base + overlays) and their offline validator."""
