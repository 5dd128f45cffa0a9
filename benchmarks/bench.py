"""Run the ogshot benchmark: ``python benchmarks/bench.py [TEMPLATE...] [options]``.

The same as ``ogshot bench``; see ogshot/bench.py for what each stage measures.
"""

from ogshot.cli import cli

if __name__ == "__main__":
    cli(["bench", *__import__("sys").argv[1:]], prog_name="benchmarks/bench.py")
