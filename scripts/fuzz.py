"""The long fuzz run: `python scripts/fuzz.py N [SEED] [--jobs 2]`.

Runs N mutated specs (case i of seed S is always the same spec and command) through the CLI,
each in a forked child with CPU, memory and time limits (tests/fuzzing.py), over `--jobs`
worker processes. Every failure is minimised and saved in tests/hostile/ as
fuzz_<command>_<hash>.arch, whose first line says what it must do now; tests/test_hostile.py runs
them all. Prints cases run, failures, the time taken and the command line.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import fuzzing


def _worker(args: tuple[int, int, int, int]) -> list[tuple[int, str, bytes, str, str]]:
    seed, start, stop, _ = args
    fuzzing.warm()
    corpus = fuzzing.seeds()
    failures = []
    for i in range(start, stop):
        case = fuzzing.make_case(random.Random(f"{seed}:{i}"), corpus)
        found, _result = fuzzing.run_case(case)
        if found is not None:
            failures.append((i, found, case.data, case.command, case.origin))
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="number of cases")
    parser.add_argument("seed", type=int, nargs="?", default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-save", action="store_true", help="do not write minimised failures to tests/hostile/")
    args = parser.parse_args()
    start = time.time()
    chunk = 50
    tasks = [(args.seed, a, min(a + chunk, args.n), k) for k, a in enumerate(range(0, args.n, chunk))]
    failures = []
    done = 0
    with multiprocessing.get_context("fork").Pool(args.jobs, maxtasksperchild=20) as pool:
        for result in pool.imap_unordered(_worker, tasks):
            failures.extend(result)
            for i, found, _data, command, origin in result:
                print(f"FAILURE case {i} ({command} on a mutation of {origin}): {found}", flush=True)
            done += chunk
            if done % 1000 == 0 or done >= args.n:
                print(f"{min(done, args.n)} cases, {len(failures)} failures, {time.time() - start:.0f} s", flush=True)
    seen = set()
    for i, found, data, command, origin in sorted(failures):
        print(f"case {i} ({command} on a mutation of {origin}): {found}")
        key = (command, fuzzing.signature(found))
        if args.no_save or key in seen:
            continue
        seen.add(key)
        small = fuzzing.minimise(fuzzing.Case(data, command, origin), found)
        name = f"fuzz_{command.replace('-', '_')}_{hashlib.sha1(small.data).hexdigest()[:10]}.arch"
        header = f"# command: {command}; found by scripts/fuzz.py seed {args.seed} case {i}: {found[:100]}\n"
        (fuzzing.HOSTILE / name).write_bytes(header.encode("utf-8", errors="replace") + small.data)
        print(f"  minimised to tests/hostile/{name} ({len(small.data)} bytes)")
    elapsed = time.time() - start
    print(f"cases run: {args.n}; failures: {len(failures)} ({len(seen)} distinct kept); time: {elapsed:.0f} s; "
          f"command: python scripts/fuzz.py {args.n} {args.seed} --jobs {args.jobs}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
