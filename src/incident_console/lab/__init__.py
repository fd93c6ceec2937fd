"""The incident lab: the seed's stack on the local docker engine, offline.

`lab.lab.Lab` is the API (up, status, load, down, oom_kills); `lab.compose.detect_compose`
finds the compose command on any host.
"""
