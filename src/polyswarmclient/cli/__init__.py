"""Command-line shells. The only modules that import click."""
