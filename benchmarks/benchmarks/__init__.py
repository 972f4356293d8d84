"""rmsopt's asv benchmarks: see ../README.md."""
