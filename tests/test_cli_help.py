"""``libtagger scan --help`` shows its three examples; shell completion scripts print and complete.

The installed ``libtagger`` command is run as a real process (the examples are rendered by
typer's rich help, the completion protocol is click's environment variables). The shell is
always named explicitly, so nothing depends on the shell the tests run from.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
LIBTAGGER = BIN / "libtagger"

EXAMPLES = [
    "libtagger scan --dry-run ~/Music",
    "libtagger scan --min-confidence 0.7 ~/Music",
    "libtagger scan --quiet --report json ~/Music > ~/scan-report.json",
]


@pytest.fixture(scope="module", autouse=True)
def _installed() -> None:
    if not LIBTAGGER.exists():
        pytest.fail(f"{LIBTAGGER} is missing: install the package (pip install -e .)")


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    full = dict(os.environ, COLUMNS="80", PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **env)
    return subprocess.run([str(LIBTAGGER), *args], capture_output=True, text=True, env=full, timeout=120)


def test_scan_help_shows_the_three_examples_whole() -> None:
    out = run("scan", "--help")
    assert out.returncode == 0, out.stderr
    lines = [line.strip(" │") for line in out.stdout.splitlines()]
    assert "Examples" in lines
    for example in EXAMPLES:
        assert example in lines, f"{example!r} is not one whole line of scan --help"
    assert "[bold]" not in out.stdout  # the markup is rendered, not printed
    # after the options, where man pages put them
    assert out.stdout.index("--dry-run ~/Music") > out.stdout.index("--log")


def test_examples_are_valid_scan_command_lines() -> None:
    """Every option an example uses is one scan accepts (a renamed option fails here)."""
    from typer.main import get_command

    from libtagger.cli import app

    scan = get_command(app).commands["scan"]
    known = {name for param in scan.params for name in param.opts}
    for example in EXAMPLES:
        used = {word for word in example.split() if word.startswith("--")}
        assert used <= known, used - known


def show_completion(shell: str) -> str:
    # typer takes the shell as the option's value only with detection off (as typer's own tests do)
    out = run("--show-completion", shell, _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_show_completion_prints_a_script_for_each_shell() -> None:
    bash = show_completion("bash")
    assert "complete -o default -F _libtagger_completion libtagger" in bash
    assert "_LIBTAGGER_COMPLETE=complete_bash" in bash
    assert "#compdef libtagger" in show_completion("zsh")
    assert "complete --command libtagger" in show_completion("fish")


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_the_bash_script_completes_commands_and_options(tmp_path: Path) -> None:
    """Source the printed script in a real bash and call its completion function."""
    script = tmp_path / "libtagger.bash"
    script.write_text(show_completion("bash"))
    probe = ('source "$1"; COMP_WORDS=($2); COMP_CWORD=$3; '
             '_libtagger_completion libtagger; printf "%s\\n" "${COMPREPLY[@]}"')
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")

    def complete(words: str, cword: int) -> list[str]:
        out = subprocess.run(["bash", "-c", probe, "bash", str(script), words, str(cword)],
                             capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr
        return [w.split(":")[0] for w in out.stdout.split()]  # bash gets "name" lines only

    assert complete("libtagger sc", 1) == ["scan"]
    assert "--min-confidence" in complete("libtagger scan --min", 2)
    assert set(complete("libtagger u", 1)) == {"undo"}


def test_install_completion_for_bash_writes_the_script_and_sources_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    out = run("--install-completion", "bash", HOME=str(home), _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")
    assert out.returncode == 0, out.stdout + out.stderr
    script = home / ".bash_completions" / "libtagger.sh"
    assert "bash completion installed in" in out.stdout
    assert "_libtagger_completion" in script.read_text()
    assert f"source '{script}'" in (home / ".bashrc").read_text()


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_without_a_shell_named_the_running_shell_is_found() -> None:
    """What a user types: typer finds the shell it runs from (its parent process)."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", None)
    # "; exit $?" keeps bash as the parent (a lone command would be exec'd in its place)
    out = subprocess.run(["bash", "-c", "libtagger --show-completion; exit $?"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "complete -o default -F _libtagger_completion libtagger" in out.stdout
