"""The self-contained installer: one file a donor runs to install seattle and create a node from a profile.

    build_installer(out, profile_path)        # `seattle installer build`: writes out (a .pyz, mode 0755)
                                              # and out.sha256 (its SHA-256, for the planner to publish)
    python3 seattle-installer.pyz --planner FP [--dir D] [--percent N] [--start]      # on the donor's machine

The installer is a Python zipapp holding four members:

    __main__.py                 this very module (its `main` below uses the standard library only)
    profile.seattle             the planner's signed profile
    seattle-V-py3-none-any.whl  seattle itself, as a pure-Python wheel built from the running package
    payload.sha256              `sha256sum` lines of the three others

Run, it first checks its members against payload.sha256 (a damaged or partly swapped file runs nothing),
prints its own SHA-256 (which the donor compares with the one the planner published: the only check a forger
cannot rewrite, since anything inside the file can be) and the fingerprint of the profile's signer, and goes
on only for the planner the donor pins (`--planner`) or confirms on a terminal. Then it creates a virtual
environment `D/venv` (unless one is there; marked `.seattle-node` for uninstall), pip-installs the wheel into
it (`--pip-args` passes options to pip: a mirror, a proxy, or `--no-deps --no-index` where the dependencies
are already visible), runs `seattle node init --dir D/node --profile ... --planner PIN` (which verifies the
profile with the pinned key, measures the machine and tells the donor what is given away) and records the
environment and D in the node's manifest, so that `seattle node uninstall --dir D/node` removes all of it.
Nothing else on the machine is touched.

The wheel is assembled here rather than by a build backend: the package is pure Python, and this works the
same from a source tree and from an installed seattle, with no network and no `wheel` package. Its
dependencies are read from the source tree's setup.cfg when there is one (the installed metadata of an
editable install can be stale), else from the installed metadata.
"""

from __future__ import annotations

import argparse
import base64
import configparser
import hashlib
import io
import os
import shlex
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PROFILE_MEMBER = "profile.seattle"
MAIN_MEMBER = "__main__.py"
#: `sha256sum` lines of every other member, checked by the installer before it runs anything.
PAYLOAD_MEMBER = "payload.sha256"
#: Written by `build_installer` beside the installer: `sha256sum -c` checks the file the donor received.
DIGEST_SUFFIX = ".sha256"
#: `seattle.donor.uninstall.VENV_MARKER`: the file naming the node a DIR/venv was made for.
VENV_MARKER = ".seattle-node"
#: `seattle.planner.profile.CONTEXT` and the envelope's signature size, for reading the signer without seattle.
_PROFILE_CONTEXT = b"seattle/planner/profile/v1\0"
_SIGNATURE_SIZE = 64
INSTALLER_NAME = "seattle-installer.pyz"
_SHEBANG = b"#!/usr/bin/env python3\n"
#: A fixed time for every member, so the same inputs build the same installer byte for byte.
_ZIP_TIME = (2024, 1, 1, 0, 0, 0)


# ---------------------------------------------------------------------------------------------------------
# Building (the planner's side: imports seattle).


def build_installer(out: Path, profile_path: Path) -> Path:
    """Check the profile, then write the installer to `out` (mode 0755) and its SHA-256 to `out.sha256`
    (`sha256sum` format, for the planner to publish beside it); returns `out`."""
    from seattle.atomicfile import write_atomic
    from seattle.errors import InstallerBuildFailed
    from seattle.planner.profile import read_profile

    read_profile(profile_path)  # a planner must never ship a profile every donor would refuse
    out = Path(out)
    name, wheel = build_wheel()
    members = {MAIN_MEMBER: Path(__file__).read_bytes(), PROFILE_MEMBER: Path(profile_path).read_bytes(),
               name: wheel}
    content = io.BytesIO()
    content.write(_SHEBANG)
    with zipfile.ZipFile(content, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            _add(archive, member, data)
        _add(archive, PAYLOAD_MEMBER, _payload_lines(members))
    data = content.getvalue()
    try:
        write_atomic(out, data, mode=0o755)
        write_atomic(digest_path(out), f"{hashlib.sha256(data).hexdigest()}  {out.name}\n".encode(), mode=0o644)
    except OSError as exc:
        raise InstallerBuildFailed(f"cannot write {out}: {exc.strerror or exc}") from None
    return out


def digest_path(installer: Path) -> Path:
    """Where `build_installer` writes the installer's SHA-256."""
    return installer.with_name(installer.name + DIGEST_SUFFIX)


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, _ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def build_wheel() -> tuple[str, bytes]:
    """(file name, content) of a py3-none-any wheel of the running seattle package."""
    import seattle

    package = Path(seattle.__file__).parent
    version = seattle.__version__
    dist_info = f"seattle-{version}.dist-info"
    files: list[tuple[str, bytes]] = []
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".typed"):
            files.append((path.relative_to(package.parent).as_posix(), path.read_bytes()))
    metadata = ["Metadata-Version: 2.1", "Name: seattle", f"Version: {version}", "Requires-Python: >=3.11"]
    metadata += [f"Requires-Dist: {requirement}" for requirement in _requirements(package)]
    files.append((f"{dist_info}/METADATA", ("\n".join(metadata) + "\n").encode()))
    files.append((f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: seattle.planner.installer\n"
                                        b"Root-Is-Purelib: true\nTag: py3-none-any\n"))
    files.append((f"{dist_info}/entry_points.txt", b"[console_scripts]\nseattle = seattle.cli.main:main\n"))
    record = [f"{name},sha256={_digest(data)},{len(data)}" for name, data in files]
    record.append(f"{dist_info}/RECORD,,")
    files.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in files:
            _add(wheel, name, data)
    return f"seattle-{version}-py3-none-any.whl", buffer.getvalue()


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")


def _requirements(package: Path) -> list[str]:
    setup_cfg = package.parent / "setup.cfg"
    if setup_cfg.is_file():
        config = configparser.ConfigParser()
        config.read(setup_cfg, encoding="utf-8")
        text = config.get("options", "install_requires", fallback="")
        return [line.strip() for line in text.splitlines() if line.strip()]
    from importlib.metadata import PackageNotFoundError, requires

    try:
        return [r for r in requires("seattle") or [] if "extra ==" not in r]
    except PackageNotFoundError:
        return []


# ---------------------------------------------------------------------------------------------------------
# Installing (the donor's side: standard library only, since seattle is not installed yet).


def _default_dir() -> Path:
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data_home) / "seattle"


def _payload_lines(members: dict[str, bytes]) -> bytes:
    """The payload hash member: `sha256sum` lines for every other member, sorted by name."""
    return "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(members.items())).encode()


def _read_payload(archive_path: Path) -> dict[str, bytes]:
    """Every member of the installer, after checking each against the payload hash member: the members must be
    exactly the ones listed there (no more, no fewer) with those SHA-256 digests. Raises ValueError otherwise.
    This catches a damaged download or a member swapped on its own; the installer file as a whole is checked by
    the donor against the SHA-256 the planner published (`<installer>.sha256`), which nothing inside the file
    can do for itself."""
    with zipfile.ZipFile(archive_path) as archive:
        names = archive.namelist()
        if len(names) != len(set(names)) or len(names) > 8:
            raise ValueError("its members are not the installer's")
        members = {name: archive.read(name) for name in names}
    listed = members.pop(PAYLOAD_MEMBER, None)
    if listed is None or listed != _payload_lines(members):
        raise ValueError("its members do not match their recorded SHA-256 digests")
    if PROFILE_MEMBER not in members or MAIN_MEMBER not in members:
        raise ValueError("it lacks the profile or its own program")
    return members


def profile_signer(profile: bytes) -> bytes:
    """The planner key (32 raw bytes) of a profile's envelope, read without verifying anything: the installer
    only shows it and passes the pin on; `seattle node init` verifies the signature with that key."""
    start = _SIGNATURE_SIZE + len(_PROFILE_CONTEXT)
    if len(profile) < start + 32 or profile[_SIGNATURE_SIZE:start] != _PROFILE_CONTEXT:
        raise ValueError("its profile is not a seattle installer profile")
    return profile[start:start + 32]


def fingerprint(key: bytes) -> str:
    """`seattle.keys.PublicKey.fingerprint`, in the standard library only (this runs before seattle is there)."""
    return base64.b32encode(hashlib.blake2b(key, digest_size=10).digest()).decode("ascii").lower()


def pin_matches(key: bytes, pin: str) -> bool:
    """True if `pin` (a fingerprint or `ed25519:` key text, as `--planner` takes) names `key`."""
    text = pin.strip()
    if text.startswith("ed25519:"):
        encoded = text[len("ed25519:"):]
        try:
            return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)) == key
        except ValueError:
            return False
    return text.lower() == fingerprint(key)


def _confirm_planner(key: bytes, pin: str | None) -> str | None:
    """The pin to pass to `node init`, or None (after saying why on standard error) when the donor has not
    pinned this planner: `--planner` must match, or a donor at a terminal must confirm the fingerprint."""
    shown = fingerprint(key)
    print(f"seattle installer: the profile is signed by planner {shown}", flush=True)
    if pin is not None:
        if pin_matches(key, pin):
            return pin
        print(f"error: the profile is signed by planner {shown}, not by the planner you pinned ({pin}); "
              "nothing was installed", file=sys.stderr)
        return None
    if sys.stdin.isatty():
        answer = input(f"Is {shown} the fingerprint your planner gave you? [y/N] ")
        if answer.strip().lower() in ("y", "yes"):
            return shown
        print("error: planner not confirmed; nothing was installed", file=sys.stderr)
        return None
    print(f"error: the profile is signed by planner {shown}; check that fingerprint with your planner, then run "
          f"this installer again with --planner {shown}; nothing was installed", file=sys.stderr)
    return None


def _write_new(path: Path, data: bytes) -> None:
    """Create `path` (O_EXCL, no symlink followed: what `seattle.atomicfile` does, which is not installed yet)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="seattle-installer",
        description="Install seattle and create a node that donates part of this machine, as the planner's "
                    "profile inside this installer describes.")
    parser.add_argument("--dir", type=Path, default=_default_dir(),
                        help="where to install: DIR/venv (seattle) and DIR/node (default: %(default)s)")
    parser.add_argument("--planner", metavar="FINGERPRINT",
                        help="the planner's key fingerprint (or ed25519: key) you trust; without it you are asked "
                             "on a terminal, and refused elsewhere")
    parser.add_argument("--percent", type=int, default=10, help="percent of this machine to donate (default 10)")
    parser.add_argument("--host", default="0.0.0.0",
                        help="IP address the node listens on (default 0.0.0.0: every interface, so the testbed "
                             "can reach it)")
    parser.add_argument("--port", type=int, default=1224, help="TCP/UDP port of the node (default 1224)")
    parser.add_argument("--ports", help="the vessels' port pool, LOW-HIGH (default 63100-63199)")
    parser.add_argument("--pip-args", default="", help="extra options for `pip install`, e.g. '--index-url URL'")
    parser.add_argument("--start", action="store_true", help="start the node once it is installed")
    args = parser.parse_args(argv)
    target = Path(os.path.normpath(args.dir.absolute()))
    venv, node = target / "venv", target / "node"
    # Run as a zipapp, this module is the archive's __main__.py, so the archive is its parent "directory".
    archive_path = Path(__file__).parent
    try:
        members = _read_payload(archive_path)
        planner = profile_signer(members[PROFILE_MEMBER])
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        print(f"error: this installer is damaged or was altered ({exc}); get it again from your planner and "
              "check its SHA-256; nothing was installed", file=sys.stderr)
        return 2
    print(f"seattle installer: this file's SHA-256 is {hashlib.sha256(archive_path.read_bytes()).hexdigest()} "
          "(compare it with the one your planner published)", flush=True)
    pin = _confirm_planner(planner, args.planner)
    if pin is None:
        return 2
    if (node / "node.json").exists():  # NodeDir.CONFIG: this part runs before seattle is installed
        print(f"error: {node} already holds a node; uninstall it first with "
              f"`{venv / 'bin' / 'seattle'} node uninstall --dir {node}`", file=sys.stderr)
        return 2
    created = [path for path in (target, venv) if not path.exists()]
    python = venv / "bin" / "python"
    with tempfile.TemporaryDirectory() as scratch:  # mkdtemp: 0700, a fresh name nobody else can plant into
        wheel_name = next(n for n in members if n.endswith(".whl"))
        wheel, profile = Path(scratch) / wheel_name, Path(scratch) / PROFILE_MEMBER
        _write_new(wheel, members[wheel_name])
        _write_new(profile, members[PROFILE_MEMBER])
        steps = []
        if not python.exists():
            steps.append(("creating a virtual environment", [sys.executable, "-m", "venv", str(venv)]))
        steps.append(("installing seattle", [str(python), "-m", "pip", "install", "--quiet",
                                             *shlex.split(args.pip_args), str(wheel)]))
        init = [str(python), "-m", "seattle.cli", "node", "init", "--dir", str(node), "--profile", str(profile),
                "--planner", pin, "--percent", str(args.percent), "--host", args.host, "--port", str(args.port)]
        steps.append(("creating the node", init + (["--ports", args.ports] if args.ports else [])))
        for what, command in steps:
            print(f"seattle installer: {what}", flush=True)
            if subprocess.run(command, cwd=target if target.exists() else None).returncode != 0:
                print(f"error: {what} failed (see above); nothing was started", file=sys.stderr)
                return 1
            if venv in created and what == "creating a virtual environment":
                # Names the node this environment was made for: uninstall removes a DIR/venv whole only then.
                _write_new(venv / VENV_MARKER, f"{node}\n".encode())
    record = ("import sys; from pathlib import Path; from seattle.donor.manifest import record_outside\n"
              "for p in sys.argv[2:]: record_outside(Path(sys.argv[1]), Path(p))")
    subprocess.run([str(python), "-c", record, str(node), *map(str, reversed(created))], cwd=target, check=True)
    seattle = venv / "bin" / "seattle"
    if args.start and subprocess.run([str(seattle), "node", "start", "--dir", str(node)]).returncode != 0:
        return 1
    print(f"installed. Commands: {seattle} node start|stop|status|uninstall --dir {node}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
