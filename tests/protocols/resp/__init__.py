"""Tests of the Redis-protocol front end (codec and commands, no sockets)."""
