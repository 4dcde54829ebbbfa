"""Running things on cluster hosts over SSH: pooled asyncssh connections with the user's
certificate, host keys always verified, commands as argv. Imports no JupyterHub.

The SSH names are loaded on first use, so that the standard-library parts (detach, the
launchers) also serve where asyncssh is not installed (the users' Jupyter environment)."""

__all__ = ["Host", "RemoteCommandError", "SSHError", "SSHPool"]


def __getattr__(name: str):
    if name in __all__:
        from . import ssh

        return getattr(ssh, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
