"""Point an overlay at a pushed image, by digest (the last step of ``make image``).

    python -m deploy.k8s.image [--root deploy/k8s] prod registry.example.org/team/ipaas@sha256:<digest>

Rewrites the ``images:`` entry ``name: ipaas`` of ``overlays/<overlay>/kustomization.yaml`` to
``newName: <registry/repository>`` and ``digest: sha256:...`` (no tag: a digest cannot move), and
leaves the rest of the file as it is.  ``make image`` passes the digest the registry gave the push
(``docker image inspect --format '{{index .RepoDigests 0}}'``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

K8S_DIR = Path(__file__).resolve().parent
IMAGE = "ipaas"  # the image name the base's workloads use
_REF = re.compile(r"^(?P<name>[a-z0-9][a-z0-9._/:-]*[a-z0-9])@(?P<digest>sha256:[0-9a-f]{64})$")
_BLOCK = re.compile(r"^images:\n(?:(?:[ \t]+.*|[ \t]*)\n)*", re.M)


class ImageError(ValueError):
    """The reference or the overlay cannot be used."""


def pin(kustomization: Path, reference: str) -> str:
    """The kustomization's new text, with the ``ipaas`` image pinned to ``reference`` (name@sha256:...)."""
    match = _REF.match(reference.strip())
    if match is None:
        raise ImageError(f"{reference!r} is not <registry>/<repository>@sha256:<64 hex digits>")
    text = kustomization.read_text(encoding="utf-8")
    spec = yaml.safe_load(text) or {}
    entries = [e for e in spec.get("images") or [] if e.get("name") != IMAGE]
    entries.append({"name": IMAGE, "newName": match.group("name"), "digest": match.group("digest")})
    block = "images:\n" + "".join(f"  - {_entry(e)}" for e in entries)
    found = _BLOCK.search(text)
    return text[: found.start()] + block + text[found.end() :] if found else text.rstrip("\n") + "\n" + block


def _entry(entry: dict[str, str]) -> str:
    lines = [f"{k}: {json.dumps(str(v))}" for k, v in entry.items()]
    return "\n    ".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=K8S_DIR)
    parser.add_argument("overlay")
    parser.add_argument("reference", help="<registry>/<repository>@sha256:<digest>")
    args = parser.parse_args(argv)
    kustomization = args.root / "overlays" / args.overlay / "kustomization.yaml"
    if not kustomization.is_file():
        sys.stderr.write(f"{kustomization}: no such overlay\n")
        return 2
    try:
        kustomization.write_text(pin(kustomization, args.reference), encoding="utf-8")
    except ImageError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    print(f"{kustomization}: image {IMAGE} -> {args.reference.strip()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
