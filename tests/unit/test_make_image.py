"""``make image``: build with the Dockerfile, push, and pin the overlay to the pushed digest.

Docker is an outside tool: a stand-in script records what it is asked and answers the digest a
registry would give.  The overlay edited is a copy of deploy/k8s, which must still validate.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.k8s import checks, validate
from deploy.k8s.kustomize import render
from tests.helpers.make_targets import k8s_copy, run_make

DIGEST = "sha256:" + "0123456789abcdef" * 4
pytestmark = pytest.mark.slow

FAKE_DOCKER = """#!/usr/bin/env bash
echo "$*" >> "{log}"
if [ "$1 $2" = "image inspect" ]; then echo "registry.example.org/team/ipaas@{digest}"; fi
"""


def test_make_image_builds_pushes_and_pins_the_overlay_to_the_digest(tmp_path: Path) -> None:
    root = k8s_copy(tmp_path)
    log = tmp_path / "docker.log"
    docker = tmp_path / "docker"
    docker.write_text(FAKE_DOCKER.format(log=log, digest=DIGEST))
    docker.chmod(0o755)
    done = run_make("image", "IMAGE=registry.example.org/team/ipaas:1.2.3", f"DOCKER={docker}", f"K8S_ROOT={root}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert log.read_text().splitlines() == [
        "build -f deploy/k8s/Dockerfile -t registry.example.org/team/ipaas:1.2.3 .",
        "push registry.example.org/team/ipaas:1.2.3",
        "image inspect --format {{index .RepoDigests 0}} registry.example.org/team/ipaas:1.2.3",
    ]
    rendered = render(root / "overlays" / "prod")
    images = {
        c["image"]
        for r in rendered
        if r["kind"] in ("Deployment", "Job")
        for c in r["spec"]["template"]["spec"]["containers"]
        if "otel" not in c["image"]
    }
    assert images == {f"registry.example.org/team/ipaas@{DIGEST}"}
    assert checks.check_image("x", images.pop(), pinned=True) == []
    assert validate.validate_all(root)["overlays/prod"] == []
    assert "# Production:" in (root / "overlays" / "prod" / "kustomization.yaml").read_text()  # comments kept


def test_make_image_without_an_image_says_how_to_call_it() -> None:
    done = run_make("image", "DOCKER=false")
    assert done.returncode != 0
    assert "usage: make image IMAGE=<registry>/<repository>:<tag>" in done.stderr
