#!/usr/bin/env python3
"""Fails when a dependency declares a newer `rust-version` than the workspace.

The workspace's `rust-version` (root Cargo.toml, `[workspace.package]`) is a promise to users:
pacer builds with that compiler. A dependency (in Cargo.lock, on any platform) that declares a
newer one breaks the promise, even when CI's own toolchain is newer still. Reads
`cargo metadata`; run from the repository root:

    python3 .ci/check-msrv.py          # the workspace's rust-version
    python3 .ci/check-msrv.py 1.80     # what would break at another one
"""

import json
import re
import subprocess
import sys
import tomllib


def version(text):
    """`1.85` or `1.85.0` as a comparable tuple (missing parts count as 0)."""
    parts = [int(p) for p in re.findall(r"\d+", text)[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    with open("Cargo.toml", "rb") as f:
        manifest = tomllib.load(f)
    declared = manifest["workspace"]["package"]["rust-version"]
    if len(sys.argv) > 1:
        declared = sys.argv[1]
    msrv = version(declared)
    run = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked"],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        print(run.stderr, file=sys.stderr)
        return 1
    metadata = json.loads(run.stdout)
    members = set(metadata["workspace_members"])
    too_new = []
    checked = 0
    for package in metadata["packages"]:
        if package["id"] in members:
            continue
        checked += 1
        needs = package.get("rust_version")
        if needs and version(needs) > msrv:
            too_new.append((package["name"], package["version"], needs))
    for member in metadata["packages"]:
        if member["id"] in members and member.get("rust_version") not in (None, declared) \
                and version(member["rust_version"]) > msrv:
            too_new.append((member["name"], member["version"], member["rust_version"]))
    if too_new:
        print(f"rust-version {declared} is not true; these packages need a newer Rust:")
        for name, ver, needs in sorted(too_new):
            print(f"  {name} {ver}: rust-version {needs}")
        print("Pin an older release of each (cargo update -p NAME --precise VERSION) or raise "
              "[workspace.package] rust-version to match.")
        return 1
    print(f"rust-version {declared}: all {checked} dependencies declare it or older (or none)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
