"""Fixtures shared by the integration tests: a real etcd for those that ask for one."""

from __future__ import annotations

from _etcd_fixtures import etcd_server as etcd_server, etcd_store as etcd_store
