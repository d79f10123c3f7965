"""The node's manifest: what seattle created for a node, so that uninstalling removes exactly that.

    record_install(node_dir, created_dir=True)     # by `seattle node init`
    record_outside(node_dir, unit_path)            # by `seattle node service install`, and the installer

`<node_dir>/manifest.json` (format `seattle-manifest-v1`, read and written by `NodeDir`) says whether init
created the directory and which paths outside it seattle made. Inside the directory seattle's files are
known by name (`NodeDir.owns`), so the manifest does not need rewriting at every start.
"""

from __future__ import annotations

from pathlib import Path

from seattle.nodemgr.nodedir import MANIFEST_FORMAT, NodeDir


def record_install(node_dir: Path, created_dir: bool) -> None:
    """Write the manifest of a node just created (`created_dir`: init made the directory itself)."""
    NodeDir(node_dir).write_manifest({"format": MANIFEST_FORMAT, "created_dir": created_dir, "outside": []})


def record_outside(node_dir: Path, path: Path) -> None:
    """Add a file seattle wrote outside the node directory (NoManifest for a node without one)."""
    paths = NodeDir(node_dir)
    manifest = paths.read_manifest()
    if str(path) not in manifest["outside"]:
        manifest["outside"].append(str(path))
    paths.write_manifest(manifest)
