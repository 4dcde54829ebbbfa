"""Running things on cluster hosts over SSH: pooled asyncssh connections with the user's
certificate, host keys always verified, commands as argv. Imports no JupyterHub."""

from .ssh import Host, RemoteCommandError, SSHError, SSHPool

__all__ = ["Host", "RemoteCommandError", "SSHError", "SSHPool"]
