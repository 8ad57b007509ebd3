"""A real Neutron API server on loopback, for the Neutron controller's tests.

Run with the interpreter of a virtualenv that has `neutron` installed (never imported into
the test process: it brings eventlet and pins of its own):

    python _neutron_server.py [--port N] [--keystone URL] STATE_DIR HOST [HOST ...]

Writes `neutron.conf` and `ml2_conf.ini` into STATE_DIR (noauth, or with `--keystone` the
`auth_strategy` keystone: keystonemiddleware's auth_token checks every request's token
with that Keystone, as the user `admin` of the project `admin` with the password in
`$KEYSTONE_ADMIN_PASSWORD`, without caching a token's validation so that a revoked token
is refused at once; ML2 with the Open vSwitch mechanism driver and VXLAN tenant networks,
a fake RPC transport, SQLite in STATE_DIR), creates the schema from Neutron's models (its
migrations need MySQL), registers an Open vSwitch agent for each HOST so that ports bound
to it bind, and serves the WSGI app `neutron.wsgi.api` one request at a time (SQLite does
not take concurrent writers) on a free loopback port. It prints `PORT <n>` on a line of
its own once it answers requests. With `--port N` it listens on that port instead (a
restart on the same address).
"""

import os
import sys
import textwrap


def _authtoken(keystone: str) -> str:
    if not keystone:
        return ""
    password = os.environ["KEYSTONE_ADMIN_PASSWORD"]
    return textwrap.dedent(
        f"""
        [keystone_authtoken]
        www_authenticate_uri = {keystone}
        auth_url = {keystone}
        auth_type = password
        username = admin
        password = {password}
        project_name = admin
        user_domain_name = Default
        project_domain_name = Default
        interface = public
        token_cache_time = -1
        """
    )


def _write_config(state: str, keystone: str) -> None:
    paste = os.path.join(sys.prefix, "etc", "neutron", "api-paste.ini")
    if not os.path.exists(paste):
        import neutron

        paste = os.path.join(os.path.dirname(neutron.__file__), "tests", "etc", "api-paste.ini")
    database = os.path.join(state, "neutron.sqlite")
    with open(os.path.join(state, "neutron.conf"), "w") as out:
        out.write(
            textwrap.dedent(
                f"""\
                [DEFAULT]
                auth_strategy = {"keystone" if keystone else "noauth"}
                core_plugin = ml2
                service_plugins =
                transport_url = fake:/
                rpc_workers = 0
                rpc_state_report_workers = 0
                api_workers = 1
                agent_down_time = 86400
                notify_nova_on_port_status_changes = false
                notify_nova_on_port_data_changes = false
                api_paste_config = {paste}
                state_path = {state}
                lock_path = {state}
                use_stderr = true
                debug = false

                [database]
                connection = sqlite:///{database}

                [oslo_concurrency]
                lock_path = {state}
                """
            )
            + _authtoken(keystone)
        )
    with open(os.path.join(state, "ml2_conf.ini"), "w") as out:
        out.write(
            textwrap.dedent(
                """\
                [ml2]
                type_drivers = flat,vlan,vxlan
                tenant_network_types = vxlan
                mechanism_drivers = openvswitch
                extension_drivers = port_security

                [ml2_type_vxlan]
                vni_ranges = 1:1000

                [securitygroup]
                enable_security_group = true
                firewall_driver = noop
                """
            )
        )


def main() -> None:
    args = sys.argv[1:]
    port = 0
    if args[:1] == ["--port"]:
        port = int(args[1])
        args = args[2:]
    keystone = ""
    if args[:1] == ["--keystone"]:
        keystone = args[1]
        args = args[2:]
    state, hosts = args[0], args[1:]
    _write_config(state, keystone)
    # Neutron's config parser reads sys.argv and rejects what it does not know.
    sys.argv = [sys.argv[0]]
    os.environ["OS_NEUTRON_CONFIG_DIR"] = state
    os.environ["OS_NEUTRON_CONFIG_FILES"] = "neutron.conf;ml2_conf.ini"

    from wsgiref import simple_server

    from neutron import server
    from neutron.server import api as api_server

    def build():  # type: ignore[no-untyped-def]
        from neutron.db import agents_db
        from neutron.db.migration.models import head  # noqa: F401  every model
        from neutron_lib import constants, context
        from neutron_lib.db import api as db_api, model_base
        from oslo_utils import timeutils

        model_base.BASEV2.metadata.create_all(db_api.CONTEXT_WRITER.get_engine())
        admin = context.get_admin_context()
        agents = agents_db.AgentDbMixin()
        for host in hosts:
            agents.create_or_update_agent(
                admin,
                {
                    "binary": constants.AGENT_PROCESS_OVS,
                    "host": host,
                    "topic": constants.L2_AGENT_TOPIC,
                    "agent_type": constants.AGENT_TYPE_OVS,
                    "configurations": {
                        "tunneling_ip": "127.0.0.1",
                        "tunnel_types": ["vxlan"],
                        "bridge_mappings": {},
                        "integration_bridge": "br-int",
                    },
                    "start_flag": True,
                },
                timeutils.utcnow(),
            )
        return api_server.api_server()

    application = server.boot_server(build, prog="neutron-api")

    class Quiet(simple_server.WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = simple_server.make_server("127.0.0.1", port, application, handler_class=Quiet)
    print(f"PORT {httpd.server_port}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
