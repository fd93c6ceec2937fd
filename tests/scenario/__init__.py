"""A user's session as a test: the real console in tmux, driven and read as a person would.

`runner` is the harness (a private tmux server, keys, waiting on the screen, captures and a step
log); `world` builds the busy engine the console meets; `postmortem` checks that the report a
session wrote agrees with itself.
"""
