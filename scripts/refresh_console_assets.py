#!/usr/bin/env python3
"""Refresh the console's vendored front-end files from the npm registry, pinned in ``assets.json``.

The web console ships htmx, its SSE extension and uPlot as plain files inside the Python package
(``agora/transports/console/static/vendor/``): no CDN, no Node.js. ``assets.json`` beside them is the lock:
for each npm package its version, tarball URL and the registry's ``dist.integrity`` (the tarball's sha512,
base64, as npm writes it), and for each file taken out of the tarball its path there, its name here and
its sha256.

    python scripts/refresh_console_assets.py --check               # offline: the files on disk are the locked ones
    python scripts/refresh_console_assets.py                       # download the pinned versions again, verify, rewrite
    python scripts/refresh_console_assets.py --set htmx.org=2.0.12 # move a package to another version

A refresh asks the registry for each package's version document, downloads the tarball, refuses it unless its
sha512 is the registry's integrity, takes out only the files the lock lists (a file that moved in a new version
is an error that names the tarball's files of the same name) and writes them, then ``assets.json`` with their
sha256. Nothing is written unless every package verified. To vendor another file or package, add its entry to
``assets.json`` by hand (its ``sha256`` may be left empty) and run a refresh.

A file may come from a URL instead of the tarball (``"url"`` instead of ``"path"``, ``{version}`` is replaced),
for a licence a tarball lacks: it is not covered by the registry's integrity, only by the sha256 recorded here.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENDOR_DIR = ROOT / "agora" / "transports" / "console" / "static" / "vendor"
LOCK_NAME = "assets.json"
DEFAULT_REGISTRY = "https://registry.npmjs.org"

Fetch = Callable[[str], bytes]


class AssetError(Exception):
    """A refresh that must not write anything: a bad download, a missing file, a wrong argument."""


# -- the lock ---------------------------------------------------------------------------------------------------


def load_lock(vendor_dir: Path = VENDOR_DIR) -> dict[str, Any]:
    return json.loads((vendor_dir / LOCK_NAME).read_text(encoding="utf-8"))


def dump_lock(lock: dict[str, Any]) -> str:
    return json.dumps(lock, indent=2, ensure_ascii=False) + "\n"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check(vendor_dir: Path = VENDOR_DIR, lock: dict[str, Any] | None = None) -> list[str]:
    """Offline: what is wrong with the vendored files against the lock (empty when all is well)."""
    problems: list[str] = []
    if lock is None:
        try:
            lock = load_lock(vendor_dir)
        except (OSError, ValueError) as exc:
            return [f"{vendor_dir / LOCK_NAME}: cannot read the lock: {exc}"]
    packages = lock.get("packages")
    if not isinstance(packages, list) or not packages:
        return [f"{LOCK_NAME}: no packages"]
    listed: set[str] = {LOCK_NAME}
    for pkg in packages:
        label = f"{pkg.get('name')}@{pkg.get('version')}"
        for key in ("name", "version", "tarball", "integrity", "files"):
            if not pkg.get(key):
                problems.append(f"{label}: no {key!r} in {LOCK_NAME}")
        integrity = str(pkg.get("integrity", ""))
        if pkg.get("integrity") and not any(part.startswith("sha512-") for part in integrity.split()):
            problems.append(f"{label}: the integrity is not a sha512 one: {integrity}")
        tarball = str(pkg.get("tarball", ""))
        if pkg.get("tarball") and not tarball.endswith(f"-{pkg.get('version')}.tgz"):
            problems.append(f"{label}: the tarball URL is not of this version: {tarball}")
        licences = 0
        for entry in pkg.get("files") or []:
            name = entry.get("name", "")
            if not name or "/" in name or name.startswith("."):
                problems.append(f"{label}: a file with a bad name: {entry!r}")
                continue
            if name in listed:
                problems.append(f"{label}: {name} is listed twice")
            listed.add(name)
            if not (entry.get("path") or entry.get("url")):
                problems.append(f"{label}: {name} has neither a path in the tarball nor a url")
            licences += bool(entry.get("license"))
            path = vendor_dir / name
            if not path.is_file():
                problems.append(f"{label}: {name} is missing from {vendor_dir}")
                continue
            data = path.read_bytes()
            if sha256_hex(data) != entry.get("sha256"):
                problems.append(f"{label}: {name} differs from the sha256 in {LOCK_NAME} (run a refresh, or undo the edit)")
            if entry.get("license") and not data.strip():
                problems.append(f"{label}: the licence file {name} is empty")
        if licences == 0:
            problems.append(f"{label}: no licence file (a file entry with \"license\": true)")
    if vendor_dir.is_dir():
        for path in sorted(vendor_dir.iterdir()):
            if path.name not in listed:
                problems.append(f"{path.name} is in {vendor_dir} but not in {LOCK_NAME}")
    return problems


# -- the registry -----------------------------------------------------------------------------------------------


def integrity_matches(data: bytes, integrity: str) -> bool:
    """Subresource-integrity check as npm does it: the data's sha512 is one of the sha512 entries (base64)."""
    wanted = [part.split("?", 1)[0][len("sha512-") :] for part in integrity.split() if part.startswith("sha512-")]
    if not wanted:
        raise AssetError(f"the integrity {integrity!r} has no sha512 entry")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")
    return actual in wanted


def version_url(registry: str, name: str, version: str) -> str:
    # A scoped name keeps its "@" and escapes its "/": @scope%2fpkg.
    return f"{registry.rstrip('/')}/{urllib.parse.quote(name, safe='@')}/{urllib.parse.quote(version, safe='')}"


def http_fetch(url: str) -> bytes:
    import httpx

    try:
        response = httpx.get(url, follow_redirects=True, timeout=60, headers={"User-Agent": "agora-refresh-console-assets"})
    except httpx.HTTPError as exc:
        raise AssetError(f"GET {url}: {exc!r}") from None
    if response.status_code != 200:
        raise AssetError(f"GET {url}: HTTP {response.status_code}")
    return response.content


def _take(tar: tarfile.TarFile, path: str, label: str) -> bytes:
    try:
        member = tar.getmember(path)
    except KeyError:
        base = path.rsplit("/", 1)[-1]
        alike = sorted(m.name for m in tar.getmembers() if m.name.rsplit("/", 1)[-1] == base)
        hint = f"; files of that name: {', '.join(alike)}" if alike else ""
        raise AssetError(f"{label}: the tarball has no {path}{hint}") from None
    if not member.isfile():
        raise AssetError(f"{label}: {path} in the tarball is not a regular file")
    extracted = tar.extractfile(member)
    assert extracted is not None
    return extracted.read()


def refresh(
    lock: dict[str, Any],
    fetch: Fetch = http_fetch,
    sets: dict[str, str] | None = None,
    registry: str | None = None,
    say: Callable[[str], None] = lambda _msg: None,
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Download and verify every package of the lock (at the versions ``sets`` gives, else the pinned ones).

    Returns the new lock and the files to write by name; raises ``AssetError`` before anything is written."""
    sets = dict(sets or {})
    registry = registry or lock.get("registry") or DEFAULT_REGISTRY
    unknown = set(sets) - {pkg["name"] for pkg in lock["packages"]}
    if unknown:
        raise AssetError(f"--set names a package that {LOCK_NAME} does not list: {', '.join(sorted(unknown))}")
    files: dict[str, bytes] = {}
    packages: list[dict[str, Any]] = []
    for pkg in lock["packages"]:
        name, version = pkg["name"], sets.get(pkg["name"], pkg["version"])
        label = f"{name}@{version}"
        say(f"{label}: asking {registry}")
        try:
            meta = json.loads(fetch(version_url(registry, name, version)))
            dist = meta["dist"]
            tarball, integrity = dist["tarball"], dist["integrity"]
        except (ValueError, KeyError, TypeError) as exc:
            raise AssetError(f"{label}: the registry's version document has no dist.tarball/dist.integrity ({exc!r})") from None
        if meta.get("name") != name or meta.get("version") != version:
            raise AssetError(f"{label}: the registry answered for {meta.get('name')}@{meta.get('version')}")
        if version == pkg["version"] and pkg.get("integrity") and integrity != pkg["integrity"]:
            raise AssetError(f"{label}: the registry's integrity {integrity} is not the pinned {pkg['integrity']}")
        say(f"{label}: downloading {tarball}")
        data = fetch(tarball)
        if not integrity_matches(data, integrity):
            raise AssetError(f"{label}: the tarball's sha512 is not the registry's integrity {integrity}")
        entries: list[dict[str, Any]] = []
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for entry in pkg["files"]:
                if entry.get("path"):
                    content = _take(tar, entry["path"], label)
                else:
                    url = entry["url"].replace("{version}", version)
                    say(f"{label}: downloading {url} (outside the tarball)")
                    content = fetch(url)
                if entry["name"] in files:
                    raise AssetError(f"{label}: {entry['name']} is listed twice")
                files[entry["name"]] = content
                entries.append({**entry, "sha256": sha256_hex(content)})
        if not any(e.get("license") for e in entries):
            raise AssetError(f"{label}: no licence file is listed (a file entry with \"license\": true)")
        written = {
            "name": name,
            "version": version,
            "license": meta.get("license") or pkg.get("license"),  # some packages' metadata names none
            "tarball": tarball,
            "integrity": integrity,
            "files": entries,
        }
        packages.append({**written, **{key: value for key, value in pkg.items() if key not in written}})  # e.g. a note
        say(f"{label}: verified, {len(entries)} file(s)")
    new_lock = {key: value for key, value in lock.items() if key not in ("registry", "packages")}
    new_lock["registry"] = registry
    new_lock["packages"] = packages
    return new_lock, files


def write(vendor_dir: Path, lock: dict[str, Any], files: dict[str, bytes]) -> list[str]:
    """Write the files and the lock (each atomically); returns the names whose content changed."""
    vendor_dir.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, content in [*files.items(), (LOCK_NAME, dump_lock(lock).encode("utf-8"))]:
        path = vendor_dir / name
        if path.is_file() and path.read_bytes() == content:
            continue
        fd, tmp = tempfile.mkstemp(dir=vendor_dir, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        changed.append(name)
    return changed


# -- the command ------------------------------------------------------------------------------------------------


def _parse_sets(values: list[str]) -> dict[str, str]:
    sets: dict[str, str] = {}
    for value in values:
        name, sep, version = value.rpartition("=")
        if not sep or not name or not version:
            raise AssetError(f"--set wants NAME=VERSION, got {value!r}")
        sets[name] = version
    return sets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="refresh_console_assets.py",
        description="Download the console's vendored front-end files from the npm registry at the versions pinned in "
        f"{LOCK_NAME}, verify each tarball against the registry's sha512 integrity, and write the files and the lock.",
    )
    parser.add_argument("--check", action="store_true", help="only verify, offline, that the files on disk match the lock")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VERSION", help="move a package to another version (repeatable)"
    )
    parser.add_argument("--vendor-dir", type=Path, default=VENDOR_DIR, help=f"where the files and {LOCK_NAME} live")
    parser.add_argument("--registry", help=f"npm registry (default: the lock's, else {DEFAULT_REGISTRY})")
    args = parser.parse_args(argv)

    from rich.console import Console

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    vendor_dir: Path = args.vendor_dir
    if args.check:
        if args.set:
            parser.error("--check does not take --set")
        problems = check(vendor_dir)
        for problem in problems:
            console.print(f"[red]✗[/] {problem}")
        if problems:
            console.print(f"[red]{len(problems)} problem(s)[/]: run scripts/refresh_console_assets.py to fetch the pinned files")
            return 1
        lock = load_lock(vendor_dir)
        for pkg in lock["packages"]:
            console.print(f"[green]✓[/] {pkg['name']}@{pkg['version']}: {', '.join(f['name'] for f in pkg['files'])}")
        return 0

    try:
        sets = _parse_sets(args.set)
        lock = load_lock(vendor_dir)
        with console.status("fetching") as status:
            new_lock, files = refresh(lock, sets=sets, registry=args.registry, say=lambda msg: (status.update(msg), console.print(msg)))
    except AssetError as exc:
        console.print(f"[red]✗[/] {exc}\nnothing was written")
        return 1
    changed = write(vendor_dir, new_lock, files)
    for pkg in new_lock["packages"]:
        console.print(f"[green]✓[/] {pkg['name']}@{pkg['version']} ({pkg['license']})")
    console.print(f"changed: {', '.join(changed)}" if changed else "no file changed")
    problems = check(vendor_dir)
    for problem in problems:
        console.print(f"[red]✗[/] {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
