"""`seattle demo`: a complete experiment on a local testbed, from nothing, cleaned up afterwards.

`run.py` holds the steps (`run_demo`), `pingall.r2py` the program every vessel runs, `matrix.py` how its
output becomes a latency matrix, `heatmap.py` the PNG. See docs/demo.md.
"""
