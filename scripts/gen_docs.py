"""Generated files: `llms-cli.txt`, static shell completions and the pre-rendered `--help` of
every command (`run402_cli/help_text.py`), rendered from the command tree.

Why generated: the docstrings and option help *are* the documentation (STYLE §2.3, §2.5), so a
hand-written reference would drift; `tests/test_docs.py` fails when the files on disk are stale.
Why static completions: click's `_RUN402_COMPLETE` runs Python (and imports the whole tree) on
every Tab; these scripts are plain shell data, regenerated whenever the tree changes.
Why pre-rendered help: `run402 <path> --help` then costs no Typer and no command module (the
CLI prints the stored text when the terminal is 80 columns or wider, or a pipe); the texts are
Typer's own output, captured here, so they cannot differ from it.
Why a fixed environment: the output must be byte-identical on every machine (width 100, no
colour, temp config dirs, no RUN402_* from the caller), or the staleness test would be flaky.

    python scripts/gen_docs.py           write the files at the repository root
    python scripts/gen_docs.py --check   write nothing; exit 1 listing the stale files
"""

from __future__ import annotations

import inspect
import os
import re
import sys
import tempfile
import textwrap
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

__all__ = ["Node", "ROOT", "REGEN", "check", "main", "render", "tree", "write"]

WIDTH = 100
ROOT = Path(__file__).resolve().parent.parent  # the repository root: parent of scripts/
REGEN = "python scripts/gen_docs.py"
HELP_MODULE = "run402_cli/help_text.py"
FILES = ("llms-cli.txt", "completions/run402.bash", "completions/run402.zsh", "completions/run402.fish",
         HELP_MODULE)
_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # what a command name may be (shell-safe)


@dataclass(frozen=True)
class Param:
    kind: str  # "option" | "argument"
    opts: tuple[str, ...]  # every spelling: primary and secondary flags ("" for arguments)
    takes_value: bool
    choices: tuple[str, ...]
    record: tuple[str, str] | None  # (name column, help column) as --help shows it
    help: str
    is_help: bool


@dataclass(frozen=True)
class Node:
    path: tuple[str, ...]  # ("run402", "projects", "provision")
    usage: str
    doc: str
    short: str
    params: tuple[Param, ...]
    children: tuple[str, ...]  # subcommand names, in tree order (empty for a leaf)

    @property
    def name(self) -> str:
        return " ".join(self.path)


# --- the tree ------------------------------------------------------------------------------


@contextmanager
def fixed_env() -> Iterator[str]:
    """Render with nothing from the caller's machine: width, colour, terminal, RUN402_* dirs."""
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="run402-docs-") as tmp:
        for key in [k for k in os.environ if k.startswith("RUN402_")]:
            del os.environ[key]
        os.environ.update(
            COLUMNS=str(WIDTH), LINES="40", NO_COLOR="1", TERM="dumb",
            RUN402_CONFIG_DIR=os.path.join(tmp, "config"), RUN402_LOCAL_DIR=os.path.join(tmp, "local"),
        )
        try:
            yield tmp
        finally:
            os.environ.clear()
            os.environ.update(saved)


def _choices(param: Any) -> tuple[str, ...]:
    desc = getattr(param, "type_descriptor", None)
    raw = getattr(desc, "choices", None) or getattr(getattr(param, "type", None), "choices", None)
    out = []
    for c in raw or ():
        value = getattr(c, "value", c)  # Enum members complete as their value
        out.append(str(value))
    return tuple(out)


def _param(param: Any, ctx: Any) -> Param:
    option = param.param_type_name == "option"
    # Sorted: Click builds the help option's spellings from a set, so their order varies by run.
    opts = tuple(sorted(param.opts, key=lambda o: (not o.startswith("--"), o))) + tuple(param.secondary_opts) if option else ()
    takes_value = option and not getattr(param, "is_flag", False) and not getattr(param, "count", False)
    return Param(
        kind="option" if option else "argument",
        opts=opts,
        takes_value=takes_value,
        choices=_choices(param) if takes_value else (),
        record=param.get_help_record(ctx),
        help=" ".join((getattr(param, "help", None) or "").split()),
        is_help=option and set(opts) <= set(ctx.help_option_names) and param.name == "help",
    )


def _doc(command: Any) -> str:
    """The docstring as written (examples keep their lines); only prose lines past WIDTH wrap."""
    text = inspect.cleandoc((command.help or "").split("\f", 1)[0]).replace("\b\n", "")
    lines: list[str] = []
    for line in text.splitlines():
        if len(line) <= WIDTH or line.startswith((" ", "Example")):
            lines.append(line)
        else:
            lines.extend(textwrap.wrap(line, WIDTH, break_on_hyphens=False))
    return "\n".join(lines)


def tree(root: Any = None) -> list[Node]:
    """Every command, depth-first in tree order, root first. `root`: a click command (default:
    the real tree from `app.build_app()`)."""
    if root is None:
        import typer

        from run402_cli.app import build_app

        root = typer.main.get_command(build_app())
    nodes: list[Node] = []

    def visit(cmd: Any, name: str, parent: Any, path: tuple[str, ...]) -> None:
        settings = {**cmd.context_settings, "terminal_width": WIDTH, "max_content_width": WIDTH}
        ctx = cmd.context_class(cmd, info_name=name, parent=parent, **settings)
        formatter = ctx.make_formatter()
        cmd.format_usage(ctx, formatter)
        children = [n for n in cmd.list_commands(ctx)] if hasattr(cmd, "list_commands") else []
        children = [n for n in children if not cmd.get_command(ctx, n).hidden]
        for n in children:
            assert _WORD.match(n), f"command name not shell-safe: {n!r}"
        nodes.append(Node(
            path=path,
            usage=formatter.getvalue().rstrip(),
            doc=_doc(cmd),
            short=cmd.get_short_help_str(limit=72),
            params=tuple(_param(p, ctx) for p in cmd.get_params(ctx) if not getattr(p, "hidden", False)),
            children=tuple(children),
        ))
        for n in children:
            visit(cmd.get_command(ctx, n), n, ctx, path + (n,))

    visit(root, "run402", None, ("run402",))
    return nodes


# --- llms-cli.txt --------------------------------------------------------------------------

_PREAMBLE = """\
run402 CLI reference for agents
===============================

Generated from the command tree by `python scripts/gen_docs.py`. Do not edit by hand.

What run402 is
--------------
run402 drives Run402 from a shell: Postgres projects with a REST API, auth, content-addressed
storage, static sites and functions, paid with x402 (test USDC on a testnet) from a local
allowance wallet. It talks to the hosted API (https://api.run402.com) by default, or to a local
Run402-compatible gateway on this machine (`run402 local up`). Names, flags, positional rules and
output shapes follow the official Run402 CLI v2.10.0.

Output contract
---------------
- Success: one JSON document on stdout, exit 0. Parse stdout as JSON (e.g. pipe it to `jq`).
- Failure: nothing on stdout, exactly one JSON line on stderr, exit 1. Its fields:
    status         always "error"
    code           a stable machine code (BAD_USAGE, BAD_FLAG, UNKNOWN_FLAG, BAD_JSON_FLAG,
                   BAD_PROJECT_ID, NO_ALLOWANCE, NO_ACTIVE_PROJECT, PROJECT_NOT_FOUND, ...)
    message        what went wrong, for a human
    retryable      true when the same call may succeed later (e.g. a network error)
    safe_to_retry  true when repeating the call cannot apply a change twice
    hint           optional: what to do next
    details        optional: structured facts (the flag, the value, the allowed values, ...)
    next_actions   suggested follow-up actions (possibly empty)
    trace_id       the server's trace id, or null
  Errors from the API also carry `http` (the status code) with the API's own error envelope
  merged in.
- Bad input (unknown flag, flag without its value, bad JSON in a flag, bad project id) fails
  this way before any network call, and nothing is changed.
- Progress (uploads, deploys) goes to stderr as JSON lines, never to stdout.
- `-h` / `--help` on any command prints the help text on stdout and exits 0; it touches neither
  the network nor any file. `run402 --version` prints the bare version.
- `status` and `allowance status` without an allowance print a non-ok JSON result on stdout and
  exit 1; `allowance export` prints the bare address.

Environment
-----------
  RUN402_API_BASE        The API to talk to (default https://api.run402.com). Set it to the
                         local gateway's api_base to work offline.
  RUN402_CONFIG_DIR      Local state (default ~/.config/run402): allowance.json, projects.json,
                         byte-compatible with the official CLI.
  RUN402_ALLOWANCE_PATH  The allowance file (default $RUN402_CONFIG_DIR/allowance.json).
  RUN402_LOCAL_DIR       The local gateway's data dir: Postgres cluster, CAS store, logs
                         (default: the platform's user data dir, run402/local).

The local gateway
-----------------
Real PostgreSQL + PostgREST + the Run402 API on 127.0.0.1, no Docker; data persists across
restarts. Needs `pip install 'run402[local]'`, and Node >= 20 for functions.
  export RUN402_API_BASE=$(run402 local up | jq -r .api_base)
  run402 init --json
  run402 local status
  run402 local logs
  run402 local down

"""


def _title(text: str, under: str) -> list[str]:
    return [text, under * len(text)]


def _params_block(node: Node) -> list[str]:
    lines: list[str] = []
    for kind, heading in (("argument", "Arguments"), ("option", "Options")):
        rows = [p.record for p in node.params if p.kind == kind and not p.is_help and p.record]
        if not rows:
            continue
        lines.append(f"{heading}:")
        col = min(max(len(name) for name, _ in rows), 30) + 4
        for name, help_ in rows:
            body = textwrap.wrap(help_, WIDTH - col) or [""]
            if len(name) + 4 > col:
                lines.append(f"  {name}")
                lines.extend(" " * col + b for b in body)
            else:
                lines.append(f"  {name.ljust(col - 2)}{body[0]}".rstrip())
                lines.extend(" " * col + b for b in body[1:])
    return lines


def render_llms(nodes: Sequence[Node]) -> str:
    out = [_PREAMBLE.rstrip("\n"), ""]
    out += _title("Commands", "-")
    col = max(len(n.name) for n in nodes) + 2
    out += [f"  {n.name.ljust(col)}{n.short}".rstrip() for n in nodes[1:]]
    for node in nodes:
        out += ["", ""] + _title(node.name, "-")
        out += [node.usage, ""]
        if node.doc:
            out += [node.doc, ""]
        if node.children:
            out.append("Subcommands: " + ", ".join(node.children))
            out.append("")
        block = _params_block(node)
        if block:
            out += block + [""]
        while out and out[-1] == "":
            out.pop()
    return "\n".join(out) + "\n"


# --- completions ---------------------------------------------------------------------------

_HEADER = "# {shell} completion for run402. Generated by `{regen}`; do not edit.\n"


def _flags(node: Node) -> list[str]:
    return [o for p in node.params for o in p.opts]


def _value_flags(node: Node) -> list[str]:
    return [o for p in node.params if p.takes_value for o in p.opts]


def _sq(text: str) -> str:
    """Single-quoted for bash and zsh."""
    return "'" + text.replace("'", "'\\''") + "'"


def _fq(text: str) -> str:
    """Single-quoted for fish (only \\' and \\\\ are escapes there)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _desc(text: str, limit: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _choice_rows(nodes: Sequence[Node]) -> list[tuple[str, list[str]]]:
    return [(f"{n.name}|{o}", list(p.choices)) for n in nodes for p in n.params if p.choices for o in p.opts]


def render_bash(nodes: Sequence[Node]) -> str:
    def table(fn: str, rows: list[tuple[str, list[str]]]) -> list[str]:
        body = [f"        {_sq(key)}) echo {_sq(' '.join(words))} ;;" for key, words in rows if words]
        return [f"{fn}() {{", '    case "$1" in', *body, "    esac", "}", ""]

    out = [_HEADER.format(shell="bash", regen=REGEN).rstrip(),
           "# Install: source it from ~/.bashrc, or copy it to",
           "# ~/.local/share/bash-completion/completions/run402", ""]
    out += table("_run402_subcommands", [(n.name, list(n.children)) for n in nodes])
    out += table("_run402_flags", [(n.name, _flags(n)) for n in nodes])
    out += table("_run402_value_flags", [(n.name, _value_flags(n)) for n in nodes])
    out += table("_run402_choices", _choice_rows(nodes))
    out.append(_BASH_MAIN)
    return "\n".join(out)


_BASH_MAIN = r"""_run402() {
    local cur word cmdpath=run402 skip=0 lastflag= subs i
    COMPREPLY=()
    cur="${COMP_WORDS[COMP_CWORD]}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${COMP_WORDS[i]}"
        if ((skip)); then
            [[ $word == "=" ]] || skip=0  # --flag=value is split into three words
            continue
        fi
        case "$word" in
            -*)
                case " $(_run402_value_flags "$cmdpath") " in
                    *" $word "*) skip=1; lastflag="$word" ;;
                esac
                continue ;;
        esac
        case " $(_run402_subcommands "$cmdpath") " in
            *" $word "*) cmdpath="$cmdpath $word" ;;
        esac
    done
    [[ $cur == "=" ]] && cur=""
    if ((skip)); then  # the value of $lastflag: its choices, else file names (-o default)
        COMPREPLY=($(compgen -W "$(_run402_choices "$cmdpath|$lastflag")" -- "$cur"))
        return 0
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_run402_flags "$cmdpath")" -- "$cur"))
        return 0
    fi
    subs="$(_run402_subcommands "$cmdpath")"
    if [[ -n $subs ]]; then
        compopt +o default 2>/dev/null
        COMPREPLY=($(compgen -W "$subs" -- "$cur"))
    fi
}
complete -o default -F _run402 run402
"""


def render_zsh(nodes: Sequence[Node]) -> str:
    out = ["#compdef run402", _HEADER.format(shell="zsh", regen=REGEN).rstrip(),
           "# Install: copy it as _run402 into a directory on $fpath (before compinit), or source it.",
           "", "_run402_node() {  # sets names, subs, flags, vflags for the command path $1",
           "    names=() subs=() flags=() vflags=()", "    case $1 in"]
    for n in nodes:
        out.append(f"        ({_sq(n.name)})")
        if n.children:
            out.append("            names=(" + " ".join(_sq(k) for k in n.children) + ")")
        sub_rows = [_short_of(nodes, n, k) for k in n.children]
        if sub_rows:
            out.append("            subs=(")
            out += [f"                {_sq(r)}" for r in sub_rows]
            out.append("            )")
        flag_rows = [f"{o}:{_desc(p.help or 'Show this message and exit.')}" for p in n.params for o in p.opts]
        if flag_rows:
            out.append("            flags=(")
            out += [f"                {_sq(r)}" for r in flag_rows]
            out.append("            )")
        if _value_flags(n):
            out.append("            vflags=(" + " ".join(_sq(o) for o in _value_flags(n)) + ")")
        out.append("            ;;")
    out += ["    esac", "}", "", "_run402_choices() {  # sets reply to the choices of '<path>|<flag>'",
            "    reply=()", "    case $1 in"]
    out += [f"        ({_sq(key)}) reply=({' '.join(_sq(w) for w in words)}) ;;"
            for key, words in _choice_rows(nodes)]
    out += ["    esac", "}", "", _ZSH_MAIN]
    return "\n".join(out)


def _short_of(nodes: Sequence[Node], parent: Node, child: str) -> str:
    kid = next(n for n in nodes if n.path == parent.path + (child,))
    return f"{child}:{_desc(kid.short)}"


_ZSH_MAIN = r"""_run402() {
    local cmdpath=run402 word lastflag= i skip=0
    local -a names subs flags vflags reply
    for ((i = 2; i < CURRENT; i++)); do
        word=${words[i]}
        if ((skip)); then skip=0; continue; fi
        _run402_node "$cmdpath"
        if [[ $word == -* ]]; then
            if ((${vflags[(Ie)$word]})); then skip=1; lastflag=$word; fi
            continue
        fi
        if ((${names[(Ie)$word]})); then cmdpath="$cmdpath $word"; fi
    done
    _run402_node "$cmdpath"
    if ((skip)); then
        _run402_choices "$cmdpath|$lastflag"
        if ((${#reply})); then compadd -a reply; else _files; fi
        return
    fi
    if [[ $PREFIX == -* ]]; then
        _describe -t options 'option' flags
    elif ((${#subs})); then
        _describe -t commands 'command' subs
    else
        _files
    fi
}

if [[ "${funcstack[1]}" == "_run402" ]]; then
    _run402 "$@"
else
    compdef _run402 run402
fi
"""


def render_fish(nodes: Sequence[Node]) -> str:
    out = [_HEADER.format(shell="fish", regen=REGEN).rstrip(),
           "# Install: copy it to ~/.config/fish/completions/run402.fish", ""]
    for fn, rows in (("__run402_subcommands", [(n.name, list(n.children)) for n in nodes]),
                     ("__run402_value_flags", [(n.name, _value_flags(n)) for n in nodes])):
        out += [f"function {fn}", "    switch $argv[1]"]
        for key, words in rows:
            if words:
                out += [f"        case {_fq(key)}", f"            printf '%s\\n' {' '.join(_fq(w) for w in words)}"]
        out += ["    end", "end", ""]
    out.append(_FISH_MAIN)
    for n in nodes:
        cond = f"-n \"__run402_at '{n.name}'\""
        for k in n.children:
            out.append(f"complete -c run402 {cond} -f -a {_fq(k)} -d {_fq(_short_of(nodes, n, k).split(':', 1)[1])}")
        for p in n.params:
            if p.kind != "option":
                continue
            spell = []
            for o in p.opts:
                if o.startswith("--"):
                    spell.append(f"-l {_fq(o[2:])}")
                elif len(o) == 2:
                    spell.append(f"-s {_fq(o[1:])}")
                else:
                    spell.append(f"-o {_fq(o[1:])}")
            value = ""
            if p.choices:
                value = f" -x -a {_fq(' '.join(p.choices))}"
            elif p.takes_value:
                value = " -r"
            desc = _desc(p.help or "Show this message and exit.")
            out.append(f"complete -c run402 {cond} {' '.join(spell)}{value} -d {_fq(desc)}")
    return "\n".join(out) + "\n"


_FISH_MAIN = r"""function __run402_path --description 'The run402 command path being completed'
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l cmdpath run402
    set -l skip 0
    for tok in $tokens
        if test $skip = 1
            set skip 0
            continue
        end
        if string match -q -- '-*' $tok
            if contains -- $tok (__run402_value_flags $cmdpath)
                set skip 1
            end
            continue
        end
        if contains -- $tok (__run402_subcommands $cmdpath)
            set cmdpath "$cmdpath $tok"
        end
    end
    echo $cmdpath
end

function __run402_at
    test (__run402_path) = "$argv[1]"
end

complete -c run402 -e
"""


# --- pre-rendered --help --------------------------------------------------------------------


def _captured(args: list[str]) -> str:
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from run402_cli import app

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = app.render(args)
    assert code == 0 and not err.getvalue(), (args, code, err.getvalue())
    return out.getvalue()


def render_help_module(nodes: Sequence[Node], forbidden: Sequence[str]) -> str:
    """`TEXTS`: command path ("" for the root, "projects sql") -> what `--help` prints there."""
    texts = {}
    for node in nodes:
        path = list(node.path[1:])
        text = _captured([*path, "--help"])
        assert _captured([*path, "-h"]) == text, node.name
        for leak in forbidden:  # a default computed from the machine cannot be stored
            assert leak not in text, (node.name, leak)
        texts[" ".join(path)] = text
    assert _captured([]) == texts[""], "`run402` alone must print the root --help"
    lines = ['"""Every command\'s `--help`, as Typer renders it at 80 columns: GENERATED by',
             f'`{REGEN}` from the command tree (do not edit; tests/test_docs.py fails when it',
             'is stale). `run402_cli.app.run` prints these without importing Typer."""', "",
             "TEXTS: dict[str, str] = {"]
    lines += [f"    {path!r}: {text!r}," for path, text in texts.items()]
    return "\n".join([*lines, "}", ""])


# --- entry point ---------------------------------------------------------------------------


def render(root: Any = None) -> dict[str, str]:
    """Every generated file (path relative to the repo root -> text), in a fixed environment."""
    with fixed_env() as tmp:
        nodes = tree(root)
        files = {
            "llms-cli.txt": render_llms(nodes),
            "completions/run402.bash": render_bash(nodes),
            "completions/run402.zsh": render_zsh(nodes),
            "completions/run402.fish": render_fish(nodes),
        }
        home = str(Path.home())
        files[HELP_MODULE] = render_help_module(nodes, [tmp] + ([home] if len(home) > 1 else []))
    for name, text in files.items():
        if name == HELP_MODULE:
            continue  # checked for leaks instead: help must print exactly what Typer prints
        # A default computed from a path must not leak the machine into the files.
        text = text.replace(tmp, "<tmp>")
        if len(home) > 1:
            text = text.replace(home, "~")
        files[name] = text
    return files


def check(root: Path = ROOT, files: dict[str, str] | None = None) -> list[str]:
    """The generated files that are missing or differ from a fresh render."""
    files = render() if files is None else files
    stale = []
    for name, text in files.items():
        path = root / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def write(root: Path = ROOT) -> list[str]:
    """Write the files that changed; return their names."""
    files = render()
    changed = check(root, files)
    for name in changed:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[name], encoding="utf-8", newline="\n")
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args not in ([], ["--check"]):
        sys.stderr.write(f"usage: {REGEN} [--check]\n")
        return 2
    if args == ["--check"]:
        stale = check()
        for name in stale:
            sys.stderr.write(f"stale: {name}\n")
        if stale:
            sys.stderr.write(f"run: {REGEN}\n")
            return 1
        return 0
    for name in write():
        sys.stdout.write(f"wrote {name}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
