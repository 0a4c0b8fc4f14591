"""A throwaway PostgreSQL server for the tests: Debian's server binaries (installed with apt-get when
missing and this is root), a new cluster in a temporary folder, listening on 127.0.0.1 at a free port
with a password, started for the tests that ask for it and stopped and deleted after them."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from helpers import free_port


def server_bin() -> Path:
    """The folder holding initdb and pg_ctl; installs Debian's postgresql package when none is found."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found and shutil.which("initdb"):
        found = [shutil.which("initdb")]
    if not found:
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise RuntimeError("PostgreSQL's server (initdb, pg_ctl) is missing: install Debian's postgresql package")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True)
            subprocess.run(install, env=env, check=True, capture_output=True)
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent


@contextmanager
def postgres_server(user: str = "kit"):
    """Yields (url, password) of a fresh server; the server is stopped and its folder removed after."""
    bin_dir = server_bin()
    folder = Path(tempfile.mkdtemp(prefix="trashseg-pg-"))
    password = "pw-" + secrets.token_hex(12)  # unique: a test greps every file and output for it
    # the server refuses to run as root: as root, it runs as Debian's postgres user
    owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    run_as = {"user": owner.pw_uid, "group": owner.pw_gid} if owner else {}
    (folder / "pw").write_text(password)
    if owner:
        for path in (folder, folder / "pw"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port = free_port()
    data, log = folder / "data", folder / "server.log"
    subprocess.run(
        [bin_dir / "initdb", "-D", data, "-U", user, f"--pwfile={folder / 'pw'}", "-A", "scram-sha-256", "-N"],
        check=True,
        capture_output=True,
        cwd=folder,
        **run_as,
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c max_connections=50"
    subprocess.run(
        [bin_dir / "pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "-o", options, "start"],
        check=True,
        capture_output=True,
        cwd=folder,
        **run_as,
    )
    try:
        yield f"postgresql://{user}:{password}@127.0.0.1:{port}/postgres", password
    finally:
        subprocess.run(
            [bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], capture_output=True, cwd=folder, **run_as
        )
        shutil.rmtree(folder, ignore_errors=True)
