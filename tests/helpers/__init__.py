"""Code the tests share (test modules import these, never each other).

- `fixture_trees`: fixture trees made complete and indexed by the real indexer;
- `toy`: small call graphs written as edge lists;
- `cli`: the command line as `chaintrace` runs it (`chaintrace.cli.main`);
- `oracle`: gcc's call graph of a fixture, the judge of its direct edges;
- `qemu_trees`: the real QEMU trees `scripts/fetch-qemu` fetched;
- `ci`: skip here, fail (or install) under CI=true.
"""
