"""A language server for Caffe net and solver definitions (LSP over stdio).

The modules split the work by job:

  server.py      pygls wiring: capabilities, document sync, the debounced analysis loop
  document.py    one analysis of one text: parse, upgrade, compile (net) or solver checks, the
                 layer and blob index, offsets <-> LSP positions
  diagnostics.py netdef's diagnostics as LSP diagnostics (ranges, codes, notes, related places)
  schema.py      field documentation and defaults read from netdef/proto/netdef.proto
  hover.py       layer, field and blob hovers (with the output-size formula of the layer)
  completion.py  field names, enum values, layer types, blob names, lr_policy names
  navigation.py  definition, references, document symbols, document links
  edits.py       formatting, rename, quick fixes, inlay hints

Nothing here is imported by the other commands: `netdef check` never pays for pygls. The
`netdef lsp` command (netdef.cli.lsp) runs server.serve().
"""
