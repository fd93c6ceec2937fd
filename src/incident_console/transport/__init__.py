"""How we reach a host: LocalHost (this machine) and SshHost (one asyncssh connection)."""
