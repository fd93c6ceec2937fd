"""sshd fixture: a real OpenSSH sshd on a random loopback port (see transport tests)."""
