"""chaintrace: static call-chain tracer for large C code bases, QEMU first."""

__version__ = "0.1.0"
