"""The fuzzing engine behind tests/test_fuzz.py and scripts/fuzz.py.

Seeds are the specs in specs/, the examples of docs/language.md and the regression files in
tests/hostile/. A case mutates one seed through its tokens (grammar-aware: numbers become
extreme values, names become other names and keywords, statements are duplicated, nested or
dropped, hostile snippets and bytes are spliced in), then runs one command of the CLI on it in a
forked child with a CPU-time limit (RLIMIT_CPU), a memory limit (RLIMIT_DATA) and a wall-clock
timeout. A case fails when the command exits with anything but 0, 1 or 2, prints a traceback, is
killed, runs out of time or memory, prints a spec error without file:line:col and the source
line, or when `check` accepts a file that `compile` then cannot build and run.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import resource
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ROOT / "tests" / "hostile"
CPU_SECONDS = 10
MEMORY_BYTES = 2 << 30
WALL_SECONDS = 120  # the machine may be shared; CPU time is what the promise bounds
# The default limits admit every network in specs/, the largest of which (YOLO: 271M parameters,
# FCN-8s: 182 GMACs) take more than 2 GB or 10 s to compile; the fuzzer checks the promise under
# tighter limits, set through the environment as a user would.
FUZZ_LIMITS = {"ARCHDSL_LIMIT_PARAMS": "50000000", "ARCHDSL_LIMIT_MACS": "10000000000",
               "ARCHDSL_LIMIT_ACTIVATIONS": "100000000", "ARCHDSL_LIMIT_TENSOR_ELEMENTS": "20000000"}


def warm() -> None:
    """Import everything a case runs and build the parser once, before forking (each case then starts fast)."""
    import torch  # noqa: F401

    import archdsl.backend
    import archdsl.cli
    import archdsl.render.cli  # noqa: F401
    from archdsl.syntax.parser import _parser

    _parser()


def seeds() -> list[tuple[str, str]]:
    """(name, text) of every seed spec: specs/, the arch examples of docs/language.md, tests/hostile/."""
    found = [(p.name, p.read_text(encoding="utf-8")) for p in sorted((ROOT / "specs").glob("*.arch"))]
    page = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    for i, m in enumerate(re.finditer(r"^```arch\n(.*?)^```$", page, re.DOTALL | re.MULTILINE)):
        found.append((f"language.md#{i}", m.group(1)))
    for p in sorted(p for p in HOSTILE.glob("*.arch") if p.is_file()):
        found.append((p.name, p.read_bytes().decode("utf-8", errors="replace")))
    return found


# ---------------------------------------------------------------- mutation

TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|[A-Za-z_][A-Za-z0-9_]*|[0-9][0-9_]*(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?'
                   r"|\*\*|//|->|==|!=|<=|>=|\S")
NUMBERS = ["0", "-1", "1", "2", "3", "7", "64", "1000", "65536", "10 ** 9", "10 ** 30", "10 ** 99", "10 ** 200",
           "2 ** 62", "0.0", "-0.5", "0.5", "1.0", "1e308", "1e400", "-1e400", "(1e400 - 1e400)", "float(10 ** 99)",
           "10 ** 10 ** 10", "int(1e300)", "sqrt(-1)", "0 ** -1", "-(2 ** 63)", "1_000_000"]
NAMES = ["None", "True", "False", "f", "F", "self", "torch", "nn", "math", "forward", "training", "to", "class",
         "lambda", "CliqueLayer", "recompute_in_backward", "in", "x", "y", "max", "range", "str", "conv", "relu",
         "bn", "fc", "clique", "dense", "residual", "concat", "sum", "groups", "highway", "repeat", "for", "if",
         "block", "network", "input", "output", "let", "expect", "within", "percent", "none", "true", "false",
         "upsample", "maxpool", "avgpool", "dropout", "gap", "flatten", "add", "reshape", "crop", "shuffle",
         "lrn", "deconv", "dwconv", "params", "macs", "channels", "feature", "transit", "import", "as", "branch"]
SNIPPETS = [
    "repeat 10 ** 9 { relu }", "for i in range(10 ** 30) { relu }", "let a = [1]\nfor i in range(64) { let a = a + a }",
    'let s = "ab" * 10 ** 10', "clique(100000, 1)", "dense(100000) { conv(1, 1) }", "groups(10 ** 6) { relu }",
    "conv(10 ** 6, 3)", "fc(10 ** 9)", "upsample(10 ** 4)", "maxpool(2, stride = 0)", "avgpool(0)",
    "dropout(1.5)", "bn(eps = -1)", "scale(1e400)", "scale(10 ** 400)", 'relu as "c{1 +}"', 'relu as "a\\u2028b"',
    'conv(4, 3) as "x""" + "y"', 'import "/dev/zero"', 'import "/etc/passwd"', 'import "a\x00b.arch"',
    "expect params == 1 within \"a\"", "let a = " + "(" * 300 + "1" + ")" * 300, "let a = " + "-" * 300 + "1",
    "let a = " + "[" * 300 + "]" * 300, "residual { " * 70 + "relu" + " }" * 70, "let a = 0 ** -1",
    "let a = int(1e400)", "let a = sqrt(-1)", "let a = range(1, 10, 0)", "let q = str(10 ** 99) * 10 ** 5",
    "\x1b[31m", "\u2028", "\x0b", "\x00", "\ufeff", "\u202e", "\r", "#", "{", "}", "(", ")", "[", "]", "->", ",",
    "let f = max\nconv(f, 3)", "conv(4, 3) as \"forward\"", "conv(4, 3) as \"None\"", "input self: [3, 4, 4]",
    "output None = relu", "clique(2, 4, kernel = 2)", "clique(2, 4, kernel = 0)", "conv(4, [3, 0])",
]


@dataclass
class Case:
    """One fuzz case: a spec's bytes, the command to run on it, and what it was made from."""

    data: bytes
    command: str
    origin: str

    def argv(self, path: str, out_dir: str) -> list[str]:
        if self.command == "compile":
            return ["compile", path, "-o", os.path.join(out_dir, "out.py")]
        if self.command == "compile-inference":
            return ["compile", path, "--inference", "-o", os.path.join(out_dir, "fast.py")]
        if self.command == "render":
            return ["render", path, "-o", os.path.join(out_dir, "out.dot")]
        if self.command == "summary-json":
            return ["summary", path, "--format", "json"]
        return [self.command, path]


def mutate(text: str, rng: random.Random, rounds: int | None = None) -> str:
    """A few token-level mutations of `text`."""
    pieces = _pieces(text)
    for _ in range(rounds or rng.choice([1, 1, 2, 3, 5])):
        pieces = rng.choice(_MUTATIONS)(pieces, rng)
    return "".join(pieces)


def _pieces(text: str) -> list[str]:
    """The text as tokens, each with the white space and comments before it (joined: the text again)."""
    pieces, last = [], 0
    for m in TOKEN.finditer(text):
        if text[last:m.start()].lstrip(" \t\n").startswith("#"):
            continue  # inside a comment: keep it with the gap
        pieces.append(text[last:m.end()])
        last = m.end()
    pieces.append(text[last:])
    return pieces


def _indices(pieces, rng, pattern):
    return [i for i, p in enumerate(pieces) if re.fullmatch(pattern, p.lstrip())]


def _number(pieces, rng):
    found = _indices(pieces, rng, r"[0-9][0-9_.eE+-]*")
    if found:
        i = rng.choice(found)
        gap = pieces[i][:len(pieces[i]) - len(pieces[i].lstrip())]
        pieces[i] = gap + rng.choice(NUMBERS)
    return pieces


def _name(pieces, rng):
    found = _indices(pieces, rng, r"[A-Za-z_]\w*")
    if found:
        i = rng.choice(found)
        gap = pieces[i][:len(pieces[i]) - len(pieces[i].lstrip())]
        pieces[i] = gap + rng.choice(NAMES + [pieces[j].lstrip() for j in rng.sample(found, min(3, len(found)))])
    return pieces


def _delete(pieces, rng):
    if len(pieces) > 2:
        i = rng.randrange(len(pieces) - 1)
        del pieces[i:i + rng.choice([1, 1, 2, 3, 8])]
    return pieces


def _duplicate(pieces, rng):
    if len(pieces) > 2:
        i = rng.randrange(len(pieces) - 1)
        j = min(len(pieces) - 1, i + rng.randint(1, 12))
        pieces[i:i] = pieces[i:j] * rng.choice([1, 2, 10])
    return pieces


def _splice(pieces, rng):
    i = rng.randrange(len(pieces))
    pieces.insert(i, rng.choice(["\n  ", " ", "\n"]) + rng.choice(SNIPPETS) + "\n")
    return pieces


def _swap(pieces, rng):
    if len(pieces) > 3:
        i, j = rng.randrange(len(pieces) - 1), rng.randrange(len(pieces) - 1)
        pieces[i], pieces[j] = pieces[j], pieces[i]
    return pieces


def _byte(pieces, rng):
    i = rng.randrange(len(pieces))
    pieces[i] = pieces[i] + rng.choice(["\udcff", "\x00", "\u2028", "\x0b", "\x0c", "\x1b]0;x\x07", "\x85", "é", "\t",
                                        '"', "\\", "{", "}"])
    return pieces


_MUTATIONS = [_number, _number, _number, _name, _name, _delete, _duplicate, _splice, _splice, _swap, _byte]


OPS = ["conv({c}, {k})", "conv({c}, {k}, stride = {s}, pad = {p})", "conv({c}, [{k}, {k2}], groups = {g})", "bn",
       "relu", "maxpool({k}, stride = {s})", "avgpool({k})", "gap", "flatten", "fc({c})", "dropout({f})",
       "upsample({s})", "dwconv({k})", "lrn", "scale({f})", "sigmoid", "tanh", "shuffle({g})", "bn(eps = {f})",
       "deconv({c}, {k}, stride = {s})", "crop({k})", "clique({l}, {c}, kernel = {k})", "reshape([{c}, {k}, {k2}])"]
EXPRS = ["{n}", "a", "i", "in.channels", "{n} {op} {n}", "a {op} {n}", "max({n}, a)", "len([{n}, {n}])",
         "range({n})[0]", "int({n} / 2)", "{n} if_ {n} > a ? {n} : {n}", "[{n}, a][0]", "str({n})", "sqrt({n})",
         "true", "none", '"s{{{n}}}"']


def generate(rng: random.Random) -> str:
    """A random spec from the grammar: a network of op steps, constructs, loops, lets and expects."""
    def number() -> str:
        return rng.choice(["1", "2", "3", "4", "8", "16", "0", "-1", "a", "2 * a", rng.choice(NUMBERS)])

    def expr(depth: int = 0) -> str:
        text = rng.choice(EXPRS).replace(" if_ ", " ")
        while "{n}" in text:
            text = text.replace("{n}", expr(depth + 1) if depth < 2 and rng.random() < 0.2 else number(), 1)
        return text.replace("{op}", rng.choice(["+", "-", "*", "/", "//", "%", "**", "==", "<", "and", "or"]))

    def op() -> str:
        fields = {"c": number(), "k": number(), "k2": number(), "s": number(), "p": number(), "g": number(),
                  "f": rng.choice(["0.5", "0.0", "1.5", "-1", "1e-5", expr()]), "l": number()}
        return rng.choice(OPS).format(**fields)

    def body(depth: int) -> str:
        return "; ".join(stmt(depth + 1) for _ in range(rng.randint(0, 3)))

    def stmt(depth: int) -> str:
        kinds = ["op"] * 6 + (["residual", "concat", "repeat", "for", "if", "dense", "groups", "highway"]
                              if depth < 3 else []) + ["let", "expect"]
        kind = rng.choice(kinds)
        if kind == "op":
            return " -> ".join(op() for _ in range(rng.randint(1, 3)))
        if kind == "residual":
            return f'residual(shortcut = "{rng.choice("ABC")}") {{ {body(depth)} }}'
        if kind == "concat":
            return "concat { " + " ".join(f"branch {{ {body(depth)} }}" for _ in range(rng.randint(1, 3))) + " }"
        if kind in ("dense", "groups", "highway"):
            return f"{kind}({number() if kind != 'highway' else ''}) {{ {body(depth)} }}"
        if kind == "repeat":
            return f"repeat {number()} {{ {body(depth)} }}"
        if kind == "for":
            return f"for i in range({number()}) {{ {body(depth)} }}"
        if kind == "if":
            return f"if {expr()} {{ {body(depth)} }} else {{ {body(depth)} }}"
        if kind == "let":
            return f"let a = {expr()}"
        return f"expect params {rng.choice(['==', '>', '<'])} {expr()}" + rng.choice(["", " within 1", " within 5 percent"])

    shape = rng.choice(["[3, 16, 16]", "[1, 8, 8]", "[4, 32]", "[8]", "[3, 8, 8, 8]", f"[{number()}, {number()}, 8]"])
    lines = [f"network g(a = {number()}) {{", f"  input x: {shape}"]
    lines += [f"  {stmt(0)}" for _ in range(rng.randint(1, 8))]
    lines += ["}", f"v = g(a = {number()})"]
    return "\n".join(lines) + "\n"


def make_case(rng: random.Random, corpus: list[tuple[str, str]]) -> Case:
    if rng.random() < 0.25:
        text, origin = generate(rng), "the grammar"
    else:
        small = [item for item in corpus if len(item[1]) < 2000]  # half the cases from the small seeds: faster
        origin, text = rng.choice(small if small and rng.random() < 0.5 else corpus)
    text = mutate(text, rng) if origin != "the grammar" or rng.random() < 0.5 else text
    data = text.encode("utf-8", errors="surrogateescape")
    command = rng.choices(["check", "summary", "summary-json", "list", "render", "compile"], [55, 12, 5, 5, 15, 8])[0]
    return Case(data, command, origin)


# ---------------------------------------------------------------- running


@dataclass
class Result:
    """What one run of the CLI did: exit status (None: killed), output, CPU seconds, peak memory."""

    status: int | None
    stdout: str
    stderr: str
    cpu: float
    rss: int
    timed_out: bool = False


def run_cli(argv: list[str], cwd: str) -> Result:
    """Run `archdsl ARGV` in a forked child with the CPU, memory and wall-clock limits."""
    out_path, err_path = os.path.join(cwd, ".stdout"), os.path.join(cwd, ".stderr")
    # the child starts with this process's memory (torch, and whatever a test suite loaded): the
    # limits count from there
    base_data, base_rss = _memory("VmData"), _memory("VmRSS")
    pid = os.fork()
    if pid == 0:  # the child: limits, redirected output, the CLI, then exit without cleanup
        code = 99
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS + 1))
            resource.setrlimit(resource.RLIMIT_DATA, (base_data + MEMORY_BYTES, base_data + MEMORY_BYTES))
            os.chdir(cwd)
            os.environ.update(FUZZ_LIMITS)
            out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(out, 1)
            os.dup2(err, 2)
            import sys

            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
            from archdsl.cli import main

            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 2
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001  (a traceback in the child: shown in its stderr)
            import traceback

            traceback.print_exc()
            code = 98
        finally:
            os._exit(code if isinstance(code, int) else 97)
    start = time.monotonic()
    timed_out = False
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - start > WALL_SECONDS:
            os.kill(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
            timed_out = True
            break
        time.sleep(0.002)
    code = os.waitstatus_to_exitcode(status)
    read = lambda p: Path(p).read_bytes().decode("utf-8", errors="replace") if os.path.exists(p) else ""
    return Result(code if code >= 0 else None, read(out_path), read(err_path), usage.ru_utime + usage.ru_stime,
                  max(0, usage.ru_maxrss * 1024 - base_rss), timed_out or code == -signal.SIGXCPU or code == -signal.SIGKILL)


def _memory(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in bytes (0 where there is none)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


LOCATED = re.compile(r"^(?!error: ).+:\d+:\d+: error: ")


def problem(result: Result, argv: list[str]) -> str | None:
    """Why a run breaks the promise, or None."""
    if result.timed_out or result.cpu > CPU_SECONDS:
        return f"took too long ({result.cpu:.1f} s of CPU)"
    if result.status is None:
        return "killed by a signal"
    if result.status not in (0, 1, 2):
        last = (result.stderr.strip().splitlines() or [""])[-1]
        return f"exit status {result.status}: {last[:200]}"
    if "Traceback (most recent call last)" in result.stderr:
        return "printed a traceback"
    if result.rss > MEMORY_BYTES:
        return f"used {result.rss >> 20} MB"
    if result.status == 1 and argv[0] in ("check", "summary", "list"):
        for block in result.stderr.strip().split("\n\n"):
            head = block.splitlines()[0] if block else ""
            if head.startswith("... and "):
                continue
            if not LOCATED.match(head) or "\n" not in block or " | " not in block:
                return f"spec error without a location and source line: {head[:200]}"
    return None


def run_case(case: Case, workdir: str | None = None) -> tuple[str | None, Result]:
    """Run one case; when `check` accepts the spec, `compile` must build and run it too (and, for half
    of those, `compile --inference`)."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = os.path.join(tmp, "case.arch")
        Path(path).write_bytes(case.data)
        argv = case.argv(path, tmp)
        result = run_cli(argv, tmp)
        found = problem(result, argv)
        if found is None and case.command == "check" and result.status == 0 and _compile_too(case.data):
            argv = Case(case.data, "compile", case.origin).argv(path, tmp)
            compiled = run_cli(argv, tmp)
            found = problem(compiled, argv)
            if found is None and compiled.status == 1:  # (2: a library without networks, or one that needs -D)
                found = "check accepts it but compile fails: " + (compiled.stderr.strip().splitlines() or [""])[0][:200]
            if found is None and compiled.status == 0 and _compile_too(case.data, 2, b"inference"):
                argv = Case(case.data, "compile-inference", case.origin).argv(path, tmp)
                compiled = run_cli(argv, tmp)
                found = problem(compiled, argv)
                if found is None and compiled.status != 0:
                    found = "compile works but compile --inference fails: " + \
                        (compiled.stderr.strip().splitlines() or [""])[0][:200]
            result = compiled if found else result
        return found, result


def _compile_too(data: bytes, share: int = 3, salt: bytes = b"") -> bool:
    """Whether to compile a case that `check` accepts: one in `share` of them (by content), to keep runs short."""
    return int(hashlib.sha1(salt + data).hexdigest(), 16) % share == 0


def signature(found: str) -> str:
    """What a failure is, without the numbers that a smaller input changes."""
    return re.sub(r"\d+(\.\d+)?", "N", found.split(":")[0])


def minimise(case: Case, found: str, budget: int = 150) -> Case:
    """A smaller case that fails the same way (delta debugging over tokens)."""
    want = signature(found)
    pieces = _pieces(case.data.decode("utf-8", errors="surrogateescape"))
    chunk = max(1, len(pieces) // 2)
    runs = 0
    while chunk >= 1 and runs < budget:
        i, shrunk = 0, False
        while i < len(pieces) and runs < budget:
            trial = pieces[:i] + pieces[i + chunk:]
            candidate = Case("".join(trial).encode("utf-8", errors="surrogateescape"), case.command, case.origin)
            runs += 1
            again, _ = run_case(candidate)
            if again is not None and signature(again) == want:
                pieces, shrunk = trial, True
            else:
                i += chunk
        if not shrunk:
            chunk //= 2
    return Case("".join(pieces).encode("utf-8", errors="surrogateescape"), case.command, case.origin)
