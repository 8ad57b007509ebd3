"""The TLS context of a client, built from its `Config`.

Guarantees: the server is verified against the configured CA only (the system's CAs when
none is configured), with its host name checked, unless `insecure` is set. A client
certificate given as PEM bytes is loaded without touching the disk where the platform
allows (an anonymous memory file); elsewhere it passes through a private temporary file
that is removed before this returns.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import ssl
import tempfile
from collections.abc import Iterator

from arktos_lite.client import _config as config_


def ssl_context(config: config_.Config) -> ssl.SSLContext:
    """The context for `config`'s https server; ValueError if its CA or certificate is bad."""
    try:
        if config.insecure:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            # PEM text: `cadata` reads bytes as DER.
            cadata = config.ca_data.decode("ascii") if config.ca_data is not None else None
            context = ssl.create_default_context(cafile=config.ca_file, cadata=cadata)
    except (ssl.SSLError, UnicodeDecodeError) as error:
        raise ValueError(f"the certificate authority cannot be loaded: {error}") from None
    if config.has_client_cert:
        _load_client_cert(context, config)
    return context


def _load_client_cert(context: ssl.SSLContext, config: config_.Config) -> None:
    try:
        if config.cert_data is None and config.key_data is None:
            assert config.cert_file is not None
            assert config.key_file is not None
            context.load_cert_chain(config.cert_file, config.key_file)
            return
        with (
            _pem_file(config.cert_data, config.cert_file) as cert,
            _pem_file(config.key_data, config.key_file) as key,
        ):
            context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as error:
        raise ValueError(f"the client certificate cannot be loaded: {error}") from None


@contextlib.contextmanager
def _pem_file(data: bytes | None, file: str | None) -> Iterator[str]:
    """A path `load_cert_chain` can read `data` from (or `file` itself), for the block."""
    if data is None:
        assert file is not None
        yield file
        return
    memory = _memory_file(data)
    if memory is not None:
        fd, path = memory
        try:
            yield path
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="arktos-client-") as directory:
        file_path = pathlib.Path(directory) / "pem"
        # The key is a secret: only this user may read it, for the moment it exists.
        fd = os.open(file_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        yield str(file_path)


def _memory_file(data: bytes) -> tuple[int, str] | None:
    """An anonymous in-memory file holding `data` and a path to it, where Linux has one."""
    create = getattr(os, "memfd_create", None)
    proc = pathlib.Path(f"/proc/{os.getpid()}/fd")
    if create is None or not proc.is_dir():
        return None
    try:
        fd: int = create("arktos-client-pem", getattr(os, "MFD_CLOEXEC", 0))
    except OSError:
        return None
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError:
        os.close(fd)
        return None
    return fd, str(proc / str(fd))
