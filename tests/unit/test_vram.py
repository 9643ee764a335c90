"""The VRAM estimate (weights + KV cache + overhead, from files on disk) and model_problem(),
also on model files that are broken or hostile."""

from __future__ import annotations

import json
import math
import shutil
import struct
from pathlib import Path

import pytest

from llenergymeasure.config.loader import load_experiment_config
from llenergymeasure.core.model_files import model_problem
from llenergymeasure.core.vram import (
    ACTIVATION_SHARE,
    CUDA_CONTEXT_GB,
    MAX_DIMENSION,
    estimate_vram,
    estimate_vram_explained,
)

LLAMA3_8B = {
    "model_type": "llama",
    "vocab_size": 128256,
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 14336,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
}
LLAMA3_8B_PARAMS = 8_030_261_248  # published parameter count


def config_for(model: str | Path, **overrides):
    return load_experiment_config(cli_overrides={"model": str(model), **overrides}, user_config_defaults={})


def safetensors_param_count(path: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        return sum(math.prod(f.get_slice(name).get_shape()) for name in f.keys())


# --- estimate_vram on the tiny model -------------------------------------------------------------


def test_parameters_are_counted_exactly_from_safetensors(tiny_model):
    expected = safetensors_param_count(tiny_model / "model.safetensors")
    estimate = estimate_vram(config_for(tiny_model, precision="fp32"))
    assert estimate is not None
    assert estimate.basis == "safetensors"
    assert estimate.params == expected
    assert estimate.weights_gb == pytest.approx(expected * 4 / 1e9)


def test_fp32_weights_are_twice_fp16_and_bf16(tiny_model):
    fp32 = estimate_vram(config_for(tiny_model, precision="fp32"))
    fp16 = estimate_vram(config_for(tiny_model, precision="fp16"))
    bf16 = estimate_vram(config_for(tiny_model, precision="bf16"))
    assert fp32.weights_gb == pytest.approx(2 * fp16.weights_gb)
    assert fp16.weights_gb == pytest.approx(bf16.weights_gb)
    assert fp32.kv_cache_gb == pytest.approx(2 * fp16.kv_cache_gb)
    assert fp32.params == fp16.params


def test_kv_cache_grows_linearly_with_batch_size(tiny_model):
    kv = {b: estimate_vram(config_for(tiny_model, **{"pytorch.batch_size": b})).kv_cache_gb for b in (1, 2, 8)}
    assert kv[1] > 0
    assert kv[2] == pytest.approx(2 * kv[1])
    assert kv[8] == pytest.approx(8 * kv[1])


def test_kv_cache_matches_the_formula_and_grows_with_sequence_length(tiny_model):
    mc = json.loads((tiny_model / "config.json").read_text())
    estimate = estimate_vram(config_for(tiny_model, precision="fp16", max_input_tokens=100, max_output_tokens=28))
    elements = 2 * mc["n_layer"] * mc["n_embd"] * 128  # K and V, per layer, full width, per position
    assert estimate.kv_cache_gb == pytest.approx(elements * 2 / 1e9)
    longer = estimate_vram(config_for(tiny_model, precision="fp16", max_input_tokens=228, max_output_tokens=28))
    assert longer.kv_cache_gb == pytest.approx(2 * estimate.kv_cache_gb)


def test_total_is_weights_plus_kv_plus_overhead(tiny_model):
    e = estimate_vram(config_for(tiny_model))
    assert e.overhead_gb == pytest.approx(ACTIVATION_SHARE * (e.weights_gb + e.kv_cache_gb) + CUDA_CONTEXT_GB)
    assert e.total_gb == pytest.approx(e.weights_gb + e.kv_cache_gb + e.overhead_gb)
    assert e.total_gb > CUDA_CONTEXT_GB


def test_model_dir_without_weights_falls_back_to_config_json(tiny_model, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(tiny_model / "config.json", bare / "config.json")
    mc = json.loads((bare / "config.json").read_text())
    hidden, layers, vocab = mc["n_embd"], mc["n_layer"], mc["vocab_size"]

    estimate = estimate_vram(config_for(bare))
    assert estimate is not None
    assert estimate.basis == "config.json"
    # tied embeddings + per layer 4h^2 attention + 2 * h * 4h MLP
    assert estimate.params == vocab * hidden + layers * 12 * hidden * hidden
    # the same KV cache as with weights present: it only depends on the config
    assert estimate.kv_cache_gb == pytest.approx(estimate_vram(config_for(tiny_model)).kv_cache_gb)


def test_sharded_local_weights_are_summed(tmp_path, tiny_model):
    import numpy as np
    from safetensors.numpy import save_file

    model = tmp_path / "sharded"
    model.mkdir()
    shutil.copy(tiny_model / "config.json", model / "config.json")
    save_file({"a": np.zeros((3, 5), dtype=np.float32)}, str(model / "model-00001-of-00002.safetensors"))
    save_file({"b": np.zeros((7,), dtype=np.float32), "c": np.zeros((2, 2, 2), dtype=np.float32)},
              str(model / "model-00002-of-00002.safetensors"), metadata={"format": "pt"})
    estimate = estimate_vram(config_for(model))
    assert estimate.basis == "safetensors"
    assert estimate.params == 15 + 7 + 8


def test_llama_style_config_estimate_is_close_to_the_published_count(tmp_path):
    model = tmp_path / "llama"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(LLAMA3_8B))
    estimate = estimate_vram(config_for(model, precision="bf16", max_input_tokens=512, max_output_tokens=128))
    assert estimate.basis == "config.json"
    assert estimate.params == pytest.approx(LLAMA3_8B_PARAMS, rel=0.001)
    assert estimate.weights_gb == pytest.approx(16.06, rel=0.01)
    # grouped-query attention: the KV cache uses the 8 KV heads, not the 32 query heads
    kv_elements = 2 * 32 * 8 * 128 * (512 + 128)
    assert estimate.kv_cache_gb == pytest.approx(kv_elements * 2 / 1e9)


def test_multimodal_config_uses_the_nested_text_config(tmp_path):
    flat, nested = tmp_path / "flat", tmp_path / "nested"
    flat.mkdir()
    nested.mkdir()
    (flat / "config.json").write_text(json.dumps(LLAMA3_8B))
    (nested / "config.json").write_text(json.dumps({"model_type": "llava", "text_config": LLAMA3_8B}))
    a, b = estimate_vram(config_for(flat)), estimate_vram(config_for(nested))
    assert (a.params, a.kv_cache_gb) == (b.params, b.kv_cache_gb)


def test_directory_without_config_json_gives_no_estimate(tmp_path):
    (tmp_path / "empty-model").mkdir()
    assert estimate_vram(config_for(tmp_path / "empty-model")) is None


def test_unknown_hub_id_not_in_cache_gives_none(hf_cache):
    assert estimate_vram(config_for("nobody/not-cached-anywhere")) is None


def test_hub_id_in_the_cache_is_estimated_from_cached_safetensors(hf_snapshot, tiny_model):
    snapshot = hf_snapshot("models", "acme/tiny")
    shutil.copy(tiny_model / "config.json", snapshot / "config.json")
    shutil.copy(tiny_model / "model.safetensors", snapshot / "model.safetensors")
    estimate = estimate_vram(config_for("acme/tiny"))
    assert estimate is not None
    assert estimate.basis == "safetensors"
    assert estimate.params == safetensors_param_count(tiny_model / "model.safetensors")


def test_hub_id_cached_with_config_only_falls_back_to_config(hf_snapshot, tiny_model):
    snapshot = hf_snapshot("models", "acme/tiny")
    shutil.copy(tiny_model / "config.json", snapshot / "config.json")
    estimate = estimate_vram(config_for("acme/tiny"))
    assert estimate is not None
    assert estimate.basis == "config.json"


def test_cached_sharded_hub_model_reads_the_index(hf_snapshot, tiny_model):
    import numpy as np
    from safetensors.numpy import save_file

    snapshot = hf_snapshot("models", "acme/sharded")
    shutil.copy(tiny_model / "config.json", snapshot / "config.json")
    save_file({"a": np.zeros((4, 4), dtype=np.float32)}, str(snapshot / "model-00001-of-00002.safetensors"))
    save_file({"b": np.zeros((10,), dtype=np.float32)}, str(snapshot / "model-00002-of-00002.safetensors"))
    index = {"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                                            "b": "model-00002-of-00002.safetensors"}}
    (snapshot / "model.safetensors.index.json").write_text(json.dumps(index))
    estimate = estimate_vram(config_for("acme/sharded"))
    assert estimate.basis == "safetensors"
    assert estimate.params == 26


# --- model_problem -------------------------------------------------------------------------------


def test_model_problem_none_for_the_tiny_model(tiny_model):
    assert model_problem(str(tiny_model)) is None


def test_model_problem_nonexistent_absolute_path(tmp_path):
    missing = tmp_path / "no" / "such" / "model"
    problem = model_problem(str(missing))
    assert problem is not None
    assert "does not exist" in problem
    assert str(missing) in problem


@pytest.mark.parametrize("model", ["./no-such-model-dir", "../no-such-model-dir", "~/no-such-llem-model-xyz", "a/b/c"])
def test_model_problem_other_path_forms(model):
    problem = model_problem(model)
    assert problem is not None and "does not exist" in problem


def test_model_problem_directory_without_config_json(tmp_path):
    (tmp_path / "weights-only").mkdir()
    (tmp_path / "weights-only" / "model.safetensors").write_bytes(b"")
    problem = model_problem(str(tmp_path / "weights-only"))
    assert problem is not None
    assert "no config.json" in problem
    assert str(tmp_path / "weights-only") in problem


def test_model_problem_a_file_instead_of_a_directory(tmp_path):
    file = tmp_path / "model.bin"
    file.write_bytes(b"x")
    problem = model_problem(str(file))
    assert problem is not None and "is a regular file, not a model directory" in problem


def test_model_problem_hub_id_offline_and_uncached(hf_cache):
    problem = model_problem("nobody/uncached-model")
    assert problem is not None
    assert "'nobody/uncached-model'" in problem
    assert "not in the Hugging Face cache" in problem
    assert "HF_HUB_OFFLINE" in problem


def test_model_problem_hub_id_in_the_cache_is_fine(hf_snapshot, tiny_model):
    snapshot = hf_snapshot("models", "acme/tiny")
    shutil.copy(tiny_model / "config.json", snapshot / "config.json")
    assert model_problem("acme/tiny") is None


# --- malformed model files: a problem naming the file, never a traceback -------------------------


GPT2_SMALL = {"model_type": "gpt2", "n_layer": 2, "n_embd": 8, "n_head": 2, "vocab_size": 16}


def safetensors_bytes(header: dict, data: bytes = b"") -> bytes:
    blob = json.dumps(header).encode()
    return struct.pack("<Q", len(blob)) + blob + data


def model_dir(tmp_path: Path, config: str | None = None, weights: bytes | None = None) -> Path:
    """A local model directory with ``config`` as config.json and ``weights`` as model.safetensors."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(GPT2_SMALL) if config is None else config)
    if weights is not None:
        (model / "model.safetensors").write_bytes(weights)
    return model


def test_a_valid_hand_made_safetensors_file_is_counted(tmp_path):
    weights = safetensors_bytes({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                                 "__metadata__": {"format": "pt"}}, bytes(24))
    model = model_dir(tmp_path, weights=weights)
    assert model_problem(str(model)) is None
    assert estimate_vram(config_for(model)).params == 6


@pytest.mark.parametrize(
    ("weights", "fragment"),
    [
        (b"\x01\x02", "truncated (2 bytes, less than a safetensors header)"),
        (struct.pack("<Q", 2**63) + b"{}", "not a safetensors file, or truncated: its header claims "
                                           "9,223,372,036,854,775,808 bytes but the file holds 10"),
        (struct.pack("<Q", 5) + b"{}", "its header claims 5 bytes but the file holds 10"),
        (struct.pack("<Q", 4) + b"\xff\xfe{}", "the safetensors header is not valid JSON (not UTF-8 at byte 0)"),
        (struct.pack("<Q", 6) + b"garbag", "the safetensors header is not valid JSON (Expecting value)"),
        (safetensors_bytes([1, 2]), "the safetensors header is not a JSON object"),
        (safetensors_bytes({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}, bytes(8)),
         "tensor 'w' ends at byte 24 of the data but the file holds 8: truncated"),
        (safetensors_bytes({"w": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 8]}}, bytes(8)),
         "tensor 'w' of shape [1099511627776, 1099511627776] and dtype F32 does not match its 8 bytes of data"),
        (safetensors_bytes({"w": {"dtype": "F4", "shape": [2**40], "data_offsets": [0, 8]}}, bytes(8)),
         "tensor 'w' of shape [1099511627776] and dtype F4 does not match its 8 bytes of data"),
        (safetensors_bytes({"w": {"dtype": "F32", "shape": "big", "data_offsets": [0, 8]}}, bytes(8)),
         "tensor 'w' has no valid shape (got 'big')"),
        (safetensors_bytes({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, bytes(8)),
         "tensor 'w' has no valid data_offsets (got [8, 0])"),
        (safetensors_bytes({"w": 7}), "tensor 'w' is not described by a JSON object"),
    ],
    ids=["short", "huge-header-length", "header-past-the-end", "not-utf8", "garbage", "not-object", "truncated-data",
         "absurd-shape", "absurd-shape-unknown-dtype", "shape-not-list", "offsets-backwards", "tensor-not-object"],
)
def test_broken_safetensors_is_a_problem_naming_the_file_and_gives_no_estimate(tmp_path, weights, fragment):
    model = model_dir(tmp_path, weights=weights)
    problem = model_problem(str(model))
    assert problem.startswith(f"model: {model / 'model.safetensors'}: ")
    assert fragment in problem
    assert problem.endswith("re-download or re-save the model")
    estimate, why = estimate_vram_explained(config_for(model))
    assert estimate is None
    assert why.startswith(f"no VRAM estimate: {model / 'model.safetensors'}: ")


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ("not json {", "not valid JSON (Expecting value)"),
        ("[1, 2]", "expected a JSON object, found list"),
        ("\"gpt2\"", "expected a JSON object, found str"),
        ("[" * 100_000 + "]" * 100_000, "not valid JSON (nested too deeply)"),
        ("", "not valid JSON (Expecting value)"),
    ],
    ids=["garbage", "list", "string", "deep", "empty"],
)
def test_broken_config_json_is_a_problem_naming_the_file(tmp_path, config, fragment):
    model = model_dir(tmp_path, config=config)
    problem = model_problem(str(model))
    assert problem.startswith(f"model: {model / 'config.json'}: ")
    assert fragment in problem
    estimate, why = estimate_vram_explained(config_for(model))
    assert estimate is None and why.startswith(f"no VRAM estimate: {model / 'config.json'}: ")


def test_non_utf8_config_json_is_a_problem_naming_the_file(tmp_path):
    model = model_dir(tmp_path)
    (model / "config.json").write_bytes(b'{"n_layer": "\xff"}')
    assert "config.json: not valid JSON (not UTF-8 at byte 13)" in model_problem(str(model))


@pytest.mark.parametrize("value", ["4096", 1e30, -1, 2**25, 10**30, [8, 8], True])
def test_absurd_config_json_dimensions_give_no_estimate_but_do_not_block_the_run(tmp_path, value):
    # some real configs hold lists here (per-layer sizes): whether the model loads is transformers' call
    model = model_dir(tmp_path, config=json.dumps({**GPT2_SMALL, "n_embd": value}))
    assert model_problem(str(model)) is None
    estimate, why = estimate_vram_explained(config_for(model))
    assert estimate is None
    assert why == (f"no VRAM estimate: {model / 'config.json'}: n_embd is {value!r}, "
                   f"not a whole number from 0 to {MAX_DIMENSION:,}")


def test_broken_index_of_a_cached_model_is_a_problem_naming_it(hf_snapshot, tiny_model):
    snapshot = hf_snapshot("models", "acme/broken")
    shutil.copy(tiny_model / "config.json", snapshot / "config.json")
    (snapshot / "model.safetensors.index.json").write_text('{"weight_map": [1]}')
    problem = model_problem("acme/broken")
    assert problem.startswith("model: ") and "model.safetensors.index.json: 'weight_map' must map" in problem
    assert estimate_vram(config_for("acme/broken")) is None


def test_broken_weights_of_a_cached_model_are_a_problem_naming_them(hf_snapshot, tiny_model):
    snapshot = hf_snapshot("models", "acme/broken")
    shutil.copy(tiny_model / "config.json", snapshot / "config.json")
    (snapshot / "model.safetensors").write_bytes(b"\x00" * 3)
    problem = model_problem("acme/broken")
    assert problem.startswith("model: ") and "model.safetensors: truncated (3 bytes" in problem
    assert estimate_vram(config_for("acme/broken")) is None


@pytest.mark.parametrize("model", ["a b", "org/na$me", "x" * 200, "-x"])
def test_a_model_that_is_neither_a_directory_nor_a_repo_id(hf_cache, model):
    assert estimate_vram_explained(config_for(model)) == (None, None)
    assert model_problem(model) == (
        f"model: {model!r} is neither a directory in {Path.cwd()} nor a valid Hugging Face repo id "
        "(org/name, letters, digits, '-', '_' and '.'); check the spelling or the path"
    )


def test_a_name_too_long_for_the_filesystem_is_not_a_crash(hf_cache):
    assert f"is neither a directory in {Path.cwd()}" in model_problem("x" * 300)
    assert "does not exist" in model_problem("/tmp/" + "x" * 300 + "/model")
