"""The `netdef` command line: every command's handler lives in this package.

main.py runs a command and maps what happens to an exit code; parser.py declares the commands
and their options; output.py prints diagnostics, notes and JSON documents. Each command's
handler is a `cmd_<name>` function in the module COMMANDS names, imported only when its
command runs (so `netdef check` does not import numpy, onnx, graphviz or pygls). Library
modules never import this package.
"""
from .main import entry, main
from .output import SCHEMA_VERSION, print_diagnostics
from .parser import COMMANDS, _command_in, build_parser

__all__ = ["COMMANDS", "SCHEMA_VERSION", "build_parser", "entry", "main", "print_diagnostics"]
