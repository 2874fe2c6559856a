"""The console's vendored front-end files (htmx, its SSE extension, uPlot) are the ones assets.json pins, each with its
licence; scripts/refresh_console_assets.py verifies tarballs against the registry's integrity. All offline."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import re
import shutil
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONSOLE = ROOT / "agora" / "transports" / "console"


def _load_script() -> Any:
    spec = importlib.util.spec_from_file_location("refresh_console_assets", ROOT / "scripts" / "refresh_console_assets.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


assets = _load_script()


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(url: str) -> bytes:
        raise AssertionError(f"a test went to the network: {url}")

    monkeypatch.setattr(assets, "http_fetch", refuse)


@pytest.fixture
def vendor_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "vendor"
    shutil.copytree(assets.VENDOR_DIR, copy)
    return copy


def test_the_committed_files_are_the_pinned_ones() -> None:
    assert assets.VENDOR_DIR == CONSOLE / "static" / "vendor"
    assert assets.check() == []
    assert assets.main(["--check"]) == 0


def test_each_library_is_pinned_with_its_licence() -> None:
    lock = assets.load_lock()
    by_name = {pkg["name"]: pkg for pkg in lock["packages"]}
    assert set(by_name) == {"htmx.org", "htmx-ext-sse", "uplot"}
    expected = {
        "htmx.org": {"htmx.min.js", "htmx.LICENSE"},
        "htmx-ext-sse": {"sse.js", "htmx-ext-sse.LICENSE"},
        "uplot": {"uPlot.iife.min.js", "uPlot.min.css", "uplot.LICENSE"},
    }
    for name, pkg in by_name.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", pkg["version"]), pkg  # an exact version, no range
        assert pkg["tarball"] == f"https://registry.npmjs.org/{name}/-/{name}-{pkg['version']}.tgz"
        assert re.fullmatch(r"sha512-[A-Za-z0-9+/]{86}==", pkg["integrity"]), pkg["integrity"]
        assert pkg["license"] in {"0BSD", "MIT"}, pkg
        assert {f["name"] for f in pkg["files"]} == expected[name]
        licences = [f for f in pkg["files"] if f.get("license")]
        assert licences, f"{name}: no licence file"
        for entry in licences:
            text = (assets.VENDOR_DIR / entry["name"]).read_text(encoding="utf-8")
            assert "Permission" in text, f"{entry['name']} does not read like a licence"
    # htmx.org's own dist/ext/sse.js is the htmx 1 extension (it warns under htmx 2): the SSE file is htmx-ext-sse's.
    assert [f["path"] for f in by_name["htmx-ext-sse"]["files"] if f["name"] == "sse.js"] == ["package/dist/sse.js"]


def test_the_templates_load_only_vendored_files() -> None:
    referenced = set()
    for template in (CONSOLE / "templates").rglob("*.html"):
        referenced |= set(re.findall(r"/ui/static/vendor/([^\"'?#\s]+)", template.read_text(encoding="utf-8")))
    vendored = {f["name"] for pkg in assets.load_lock()["packages"] for f in pkg["files"]}
    assert referenced <= vendored, f"templates load vendor files that assets.json does not pin: {referenced - vendored}"


def test_check_finds_an_edited_file(vendor_copy: Path) -> None:
    with open(vendor_copy / "htmx.min.js", "ab") as f:
        f.write(b"\n// local patch\n")
    problems = assets.check(vendor_copy)
    assert len(problems) == 1 and "htmx.min.js differs from the sha256" in problems[0], problems
    assert assets.main(["--check", "--vendor-dir", str(vendor_copy)]) == 1


def test_check_finds_a_missing_licence(vendor_copy: Path) -> None:
    (vendor_copy / "uplot.LICENSE").unlink()
    assert any("uplot.LICENSE is missing" in p for p in assets.check(vendor_copy))

    lock = json.loads((vendor_copy / "assets.json").read_text())
    for pkg in lock["packages"]:
        if pkg["name"] == "htmx-ext-sse":
            pkg["files"] = [f for f in pkg["files"] if not f.get("license")]
    (vendor_copy / "htmx-ext-sse.LICENSE").unlink()
    problems = assets.check(vendor_copy, lock)
    assert any(p.startswith("htmx-ext-sse@2.2.4: no licence file") for p in problems), problems


def test_check_finds_an_unlisted_file(vendor_copy: Path) -> None:
    (vendor_copy / "alpine.min.js").write_text("// dropped in by hand\n")
    assert assets.check(vendor_copy) == [f"alpine.min.js is in {vendor_copy} but not in assets.json"]


# -- refresh, against a registry faked in memory ------------------------------------------------------------------


def _tarball(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for path, content in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


class FakeRegistry:
    def __init__(self, name: str, versions: dict[str, dict[str, bytes]]) -> None:
        self.responses: dict[str, bytes] = {}
        for version, files in versions.items():
            data = _tarball(files)
            tarball = f"https://registry.example/{name}/-/{name}-{version}.tgz"
            dist = {"tarball": tarball, "integrity": _integrity(data)}
            self.responses[f"https://registry.example/{name}/{version}"] = json.dumps(
                {"name": name, "version": version, "license": "MIT", "dist": dist}
            ).encode()
            self.responses[tarball] = data

    def __call__(self, url: str) -> bytes:
        return self.responses[url]


LOCK = {
    "registry": "https://registry.example",
    "packages": [
        {
            "name": "chartlib",
            "version": "1.0.0",
            "files": [
                {"path": "package/dist/chart.min.js", "name": "chart.min.js", "sha256": ""},
                {"path": "package/LICENSE", "name": "chartlib.LICENSE", "license": True, "sha256": ""},
            ],
        }
    ],
}


def test_refresh_writes_the_verified_files_and_bumps_a_version(tmp_path: Path) -> None:
    registry = FakeRegistry(
        "chartlib",
        {
            "1.0.0": {"package/dist/chart.min.js": b"one()", "package/LICENSE": b"MIT licence"},
            "1.1.0": {"package/dist/chart.min.js": b"two()", "package/LICENSE": b"MIT licence"},
        },
    )
    lock, files = assets.refresh(LOCK, fetch=registry)
    assert files == {"chart.min.js": b"one()", "chartlib.LICENSE": b"MIT licence"}
    pkg = lock["packages"][0]
    assert pkg["integrity"] == _integrity(registry.responses[pkg["tarball"]])
    assert pkg["files"][0]["sha256"] == hashlib.sha256(b"one()").hexdigest()
    assert assets.write(tmp_path, lock, files) == ["chart.min.js", "chartlib.LICENSE", "assets.json"]
    assert assets.check(tmp_path) == []
    assert assets.write(tmp_path, *assets.refresh(assets.load_lock(tmp_path), fetch=registry)) == []  # reproducible

    bumped, files = assets.refresh(assets.load_lock(tmp_path), fetch=registry, sets={"chartlib": "1.1.0"})
    assert bumped["packages"][0]["version"] == "1.1.0"
    assert assets.write(tmp_path, bumped, files) == ["chart.min.js", "assets.json"]
    assert (tmp_path / "chart.min.js").read_bytes() == b"two()"
    assert assets.check(tmp_path) == []


def test_refresh_refuses_a_tarball_that_is_not_the_registrys(tmp_path: Path) -> None:
    registry = FakeRegistry("chartlib", {"1.0.0": {"package/dist/chart.min.js": b"one()", "package/LICENSE": b"MIT"}})
    tarball = "https://registry.example/chartlib/-/chartlib-1.0.0.tgz"
    registry.responses[tarball] = _tarball({"package/dist/chart.min.js": b"evil()", "package/LICENSE": b"MIT"})
    with pytest.raises(assets.AssetError, match="sha512 is not the registry's integrity"):
        assets.refresh(LOCK, fetch=registry)


def test_refresh_refuses_a_registry_that_changed_a_pinned_version() -> None:
    registry = FakeRegistry("chartlib", {"1.0.0": {"package/dist/chart.min.js": b"one()", "package/LICENSE": b"MIT"}})
    pinned = json.loads(json.dumps(LOCK))
    pinned["packages"][0]["integrity"] = _integrity(b"what was published first")
    with pytest.raises(assets.AssetError, match="is not the pinned"):
        assets.refresh(pinned, fetch=registry)


def test_refresh_names_a_file_that_moved() -> None:
    registry = FakeRegistry("chartlib", {"1.0.0": {"package/build/chart.min.js": b"one()", "package/LICENSE": b"MIT"}})
    with pytest.raises(assets.AssetError, match="no package/dist/chart.min.js; files of that name: package/build/chart.min.js"):
        assets.refresh(LOCK, fetch=registry)


def test_refresh_wants_known_names_and_a_licence() -> None:
    registry = FakeRegistry("chartlib", {"1.0.0": {"package/dist/chart.min.js": b"one()", "package/LICENSE": b"MIT"}})
    with pytest.raises(assets.AssetError, match="does not list: htmx"):
        assets.refresh(LOCK, fetch=registry, sets={"htmx": "2.0.12"})
    unlicensed = json.loads(json.dumps(LOCK))
    unlicensed["packages"][0]["files"].pop()
    with pytest.raises(assets.AssetError, match="no licence file"):
        assets.refresh(unlicensed, fetch=registry)


def test_integrity_is_npms_sha512_base64() -> None:
    assert assets.integrity_matches(b"abc", _integrity(b"abc"))
    assert assets.integrity_matches(b"abc", "sha1-whatever " + _integrity(b"abc"))
    assert not assets.integrity_matches(b"abd", _integrity(b"abc"))
    with pytest.raises(assets.AssetError, match="no sha512"):
        assets.integrity_matches(b"abc", "sha1-qZk+NkcGgWq6PiVxeFDCbJzQ2J0=")
