"""The command line: parses options, calls the library, turns its errors into clean messages.

Nothing here imports TensorFlow at module level, so ``libtagger query`` starts fast.
"""

from __future__ import annotations

import typer

app = typer.Typer(help="Batch genre tagger for personal music libraries.", no_args_is_help=True,
                  add_completion=False)

# --- scan / query / stats / show / undo: owned by the pipeline (see libtagger/pipeline.py) ---

# --- train / evaluate: owned by the model modules (see libtagger/train.py, libtagger/evaluate.py) ---


if __name__ == "__main__":  # pragma: no cover
    app()
