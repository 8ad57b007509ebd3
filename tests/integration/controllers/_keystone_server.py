"""A real Keystone (identity v3) on loopback, for the Neutron controller's password auth.

Run with the interpreter of a virtualenv that has `keystone` installed (the Neutron one:
never imported into the test process):

    KEYSTONE_ADMIN_PASSWORD=... python _keystone_server.py [--port N] STATE_DIR

On first start in STATE_DIR it writes `keystone.conf` (SQLite in STATE_DIR, Fernet tokens
with keys in STATE_DIR/fernet), creates the schema with `keystone-manage db_sync` and
runs `keystone-manage bootstrap` for the user `admin` ($KEYSTONE_ADMIN_PASSWORD) with the role
`admin` in the project `admin`, and Keystone's own endpoint in the catalog. Then it serves
the WSGI app `keystone.server.wsgi` one request at a time on a free loopback port (or N:
a restart keeps its address and its database). It prints `PORT <n>` on a line of its own
as soon as it listens, before the database is made: requests wait until it serves.
"""

import base64
import os
import subprocess
import sys
import textwrap


def _write_config(state: str) -> None:
    keys = os.path.join(state, "fernet")
    with open(os.path.join(state, "keystone.conf"), "w") as out:
        out.write(
            textwrap.dedent(
                f"""\
                [DEFAULT]
                use_stderr = true
                debug = false

                [database]
                connection = sqlite:///{os.path.join(state, "keystone.sqlite")}

                [identity]
                # Few bcrypt rounds: a password check in milliseconds, not a quarter second.
                password_hash_rounds = 4

                [token]
                provider = fernet
                expiration = 3600

                [fernet_tokens]
                key_repository = {keys}

                [fernet_receipts]
                key_repository = {keys}
                """
            )
        )
    # A Fernet key repository as `keystone-manage fernet_setup` leaves it: key 0 staged,
    # key 1 primary.
    os.makedirs(keys, mode=0o700, exist_ok=True)
    for index in (0, 1):
        path = os.path.join(keys, str(index))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(base64.urlsafe_b64encode(os.urandom(32)))


def _manage(state: str, *args: str, env: "dict[str, str] | None" = None) -> None:
    manage = os.path.join(os.path.dirname(sys.executable), "keystone-manage")
    config = os.path.join(state, "keystone.conf")
    done = subprocess.run(
        [manage, "--config-file", config, *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"keystone-manage {args[0]} failed ({done.returncode})")


def main() -> None:
    args = sys.argv[1:]
    port = 0
    if args[:1] == ["--port"]:
        port = int(args[1])
        args = args[2:]
    [state] = args
    password = os.environ["KEYSTONE_ADMIN_PASSWORD"]

    from wsgiref import simple_server

    class Quiet(simple_server.WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = simple_server.make_server("127.0.0.1", port, lambda env, start: [], handler_class=Quiet)
    url = f"http://127.0.0.1:{httpd.server_port}/v3"
    print(f"PORT {httpd.server_port}", flush=True)
    if not os.path.exists(os.path.join(state, "keystone.conf")):
        _write_config(state)
        _manage(state, "db_sync")
        _manage(
            state,
            "bootstrap",
            "--bootstrap-username=admin",
            "--bootstrap-project-name=admin",
            "--bootstrap-role-name=admin",
            "--bootstrap-service-name=keystone",
            "--bootstrap-region-id=RegionOne",
            f"--bootstrap-public-url={url}",
            f"--bootstrap-internal-url={url}",
            f"--bootstrap-admin-url={url}",
            env={"OS_BOOTSTRAP_PASSWORD": password},
        )

    # Keystone's config parser reads sys.argv and rejects what it does not know.
    sys.argv = [sys.argv[0]]
    os.environ["OS_KEYSTONE_CONFIG_DIR"] = state
    from keystone.server import wsgi

    httpd.set_app(wsgi.initialize_public_application())
    httpd.serve_forever()


if __name__ == "__main__":
    main()
