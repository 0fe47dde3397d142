"""A Dockerfile's file steps, applied to the repository without a container engine.

No Docker engine runs on these machines, so this reads a Dockerfile and does what a build
does with files: each stage gets a scratch root; `COPY`/`ADD` of the build context (minus
.dockerignore) or of an earlier stage (`--from=`) follow Docker's rules (a directory
source copies its *contents*; several sources need a directory destination; a relative
destination is under `WORKDIR`); `RUN` steps that are pip commands run for real, with the
image's absolute paths mapped onto the scratch roots. Everything else (apt-get, useradd,
users, health checks) is parsed and kept for the tests to read.
"""
from __future__ import annotations

import fnmatch
import glob
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Instruction:
    op: str  # upper case: FROM, COPY, RUN, ...
    args: str  # the rest of the (joined) line
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def ops(self, op: str) -> list[Instruction]:
        return [i for i in self.instructions if i.op == op]


def parse(text: str) -> list[Stage]:
    """Stages with their instructions (comments dropped, `\\` continuations joined)."""
    stages: list[Stage] = []
    joined, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not joined and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if joined and line.lstrip().startswith("#"):
            continue
        if not joined:
            start = number
        if line.endswith("\\"):
            joined += line[:-1] + " "
            continue
        joined += line
        op, _, args = joined.strip().partition(" ")
        joined = ""
        instruction = Instruction(op.upper(), args.strip(), start)
        if instruction.op == "FROM":
            words = instruction.args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif not stages:
            raise ValueError(f"line {start}: {instruction.op} before FROM")
        else:
            stages[-1].instructions.append(instruction)
    return stages


def _ignored(context: Path) -> list[str]:
    path = context / ".dockerignore"
    if not path.exists():
        return []
    return [p.strip().rstrip("/") for p in path.read_text().splitlines() if p.strip() and not p.startswith("#")]


def _is_ignored(relative: str, patterns: list[str]) -> bool:
    parts = relative.split("/")
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        if fnmatch.fnmatch(relative, pattern) or any(fnmatch.fnmatch(p, bare) for p in parts):
            return True
    return False


def _copy_tree_contents(src: Path, dest: Path, context: Path | None, patterns: list[str]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for child in sorted(src.iterdir()):
        relative = str(child.relative_to(context)) if context else ""
        if context and _is_ignored(relative, patterns):
            continue
        target = dest / child.name
        if child.is_dir() and not child.is_symlink():
            _copy_tree_contents(child, target, context, patterns)
        else:
            shutil.copy2(child, target)


@dataclass
class Build:
    context: Path
    scratch: Path
    stages: list[Stage]
    roots: dict[str, Path] = field(default_factory=dict)  # stage name or index -> its root
    pips: dict[int, list[str]] = field(default_factory=dict)  # stage index -> the pip its RUN steps use
    env: dict[str, str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    def root(self, index: int) -> Path:
        stage = self.stages[index]
        return self.roots.setdefault(stage.name or str(index), self.scratch / f"stage{index}")

    def in_image(self, index: int, path: str, workdir: str) -> Path:
        absolute = path if path.startswith("/") else f"{workdir.rstrip('/')}/{path}"
        return self.root(index) / absolute.lstrip("/")

    def run(self) -> None:
        for index, stage in enumerate(self.stages):
            workdir = "/"
            self.root(index).mkdir(parents=True, exist_ok=True)
            for instruction in stage.instructions:
                if instruction.op == "WORKDIR":
                    workdir = instruction.args if instruction.args.startswith("/") else f"{workdir}/{instruction.args}"
                    self.in_image(index, "", workdir).mkdir(parents=True, exist_ok=True)
                elif instruction.op in ("COPY", "ADD"):
                    self._copy(index, instruction, workdir)
                elif instruction.op == "RUN":
                    self._run(index, instruction, workdir)

    def _copy(self, index: int, instruction: Instruction, workdir: str) -> None:
        words = shlex.split(instruction.args)
        flags = [w for w in words if w.startswith("--")]
        paths = [w for w in words if not w.startswith("--")]
        *sources, dest = paths
        from_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
        origin = self.roots[from_stage] if from_stage is not None else self.context
        patterns = [] if from_stage is not None else _ignored(self.context)
        target = self.in_image(index, dest, workdir)
        matches: list[Path] = []
        for source in sources:
            found = sorted(glob.glob(str(origin / source.lstrip("/")))) if from_stage is not None or not \
                source.startswith("/") else []
            if not found:
                raise FileNotFoundError(f"line {instruction.line}: COPY source {source!r} not found")
            matches += [Path(p) for p in found]
        if len(matches) > 1 and not dest.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)  # several sources: the destination is a directory
        for match in matches:
            if match.is_dir():
                _copy_tree_contents(match, target, None if from_stage else self.context, patterns)
            else:
                into = target / match.name if dest.endswith("/") or target.is_dir() or len(matches) > 1 else target
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(match, into)

    def _run(self, index: int, instruction: Instruction, workdir: str) -> None:
        for command in re.split(r"\s*&&\s*", instruction.args):
            words = shlex.split(command)
            if words[:1] == ["pip"] or words[:3] == ["python", "-m", "pip"]:
                self._pip(index, words[3:] if words[0] == "python" else words[1:], workdir)
            elif words[:2] == ["rm", "-rf"]:
                for path in words[2:]:
                    shutil.rmtree(self.in_image(index, path, workdir), ignore_errors=True)
            else:
                self.log.append(f"skipped (not a file step): {command}")

    def _pip(self, index: int, args: list[str], workdir: str) -> None:
        mapped = [str(self.in_image(index, a, workdir)) if a.startswith("/") else a for a in args]
        if mapped[:1] == ["install"] and "--upgrade" in mapped:
            self.log.append("skipped: pip upgrade of the build tools")
            return
        if mapped[:1] == ["install"]:
            # the dependencies come from the test's own environment (which also lists an editable dunline)
            mapped[1:1] = ["--no-index", "--no-deps", "--ignore-installed"]
        cwd = self.in_image(index, "", workdir)
        proc = subprocess.run([*self.pips[index], *mapped], cwd=cwd, capture_output=True, text=True, timeout=600,
                              env={**os.environ, **self.env})
        self.log.append(f"pip {' '.join(mapped)}: {proc.returncode}")
        if proc.returncode != 0:
            raise RuntimeError(f"RUN pip {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
