"""`incident-console watch`: the seed's unattended monitor, with guarded auto-remediation."""
