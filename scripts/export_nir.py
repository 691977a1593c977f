"""Export a trained agent's pi_ref as a NIR graph (input -> affine -> spiking population -> read-out -> output).

    python scripts/export_nir.py CHECKPOINT OUT.nir [--agent B]

CHECKPOINT is a checkpoint file or a run directory. The graph's conventions (dt = 1 forward Euler, delayed
recurrent edges, logits output) are in lfcs/export/nir_export.py and in the graph's metadata.
"""

import sys
from pathlib import Path

from lfcs.running.scripting import OneLineParser, guarded, integer, output_file

PROG = "export_nir.py"


def parse(argv: list[str]):
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="checkpoint file or run directory")
    parser.add_argument("out", type=output_file(".nir"), help="the .nir file to write")
    parser.add_argument("--agent", type=integer(0), default=None, help="global agent id (default: the first)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)

    def run() -> None:
        from lfcs.export.nir_export import export
        from lfcs.export.saved_agent import load_agent

        saved = load_agent(args.checkpoint, args.agent)
        graph = export(saved, args.out)
        kinds = ", ".join(f"{name}:{type(node).__name__}" for name, node in graph.nodes.items())
        print(f"agent {saved.agent} ({saved.path.name}, episode {saved.episode}) -> {args.out}: {kinds}")

    return guarded(PROG, run)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
