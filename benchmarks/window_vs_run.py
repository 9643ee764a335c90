"""``measure_energy`` in a plain script against ``llem run`` on the same work: the same J/token?

One process. ``run_experiment`` measures REPEATS windows of N builtin prompts in batches of BATCH,
greedy, exactly NEW tokens each; then a plain transformers loop does the same work (same prompts,
left padding, batches and lengths) inside ``measure_energy`` windows. Both use the machine's best
source (NVML on a GPU, RAPL, else the CPU estimate). Prints both medians with their spread and the
ratio; on the same work it should be 1 within the run-to-run noise (the IQRs printed).

    python benchmarks/window_vs_run.py [--model DIR] [--device cpu|cuda] [--n 16] [--batch 4] [--new 32]
                                       [--repeats 5]

Without ``--model`` a tiny GPT-2 is built offline in a temporary folder.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--new", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llenergymeasure import measure_energy, run_experiment
    from llenergymeasure.datasets import load_prompts
    from llenergymeasure.testing.tiny_model import build_tiny_gpt2

    model = args.model or str(build_tiny_gpt2(Path(tempfile.mkdtemp()) / "tiny-gpt2"))
    result = run_experiment(model=model, dataset="builtin", n=args.n, precision="fp32", max_input_tokens=64,
                            max_output_tokens=args.new, repeats=args.repeats, baseline={"enabled": False},
                            decoder={"ignore_eos": True}, pytorch={"batch_size": args.batch, "device": args.device})
    by_run = [r.metrics.joules_per_token for r in result.repeats]

    tokenizer = AutoTokenizer.from_pretrained(model, padding_side="left")
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).to(args.device).eval()
    prompts = load_prompts("builtin", args.n)
    batches = [tokenizer(prompts[i:i + args.batch], return_tensors="pt", padding=True, truncation=True,
                         max_length=64).to(args.device) for i in range(0, args.n, args.batch)]

    def work() -> int:
        with torch.inference_mode():
            return sum(lm.generate(**b, max_new_tokens=args.new, min_new_tokens=args.new, do_sample=False,
                                   pad_token_id=tokenizer.pad_token_id).shape[0] * args.new for b in batches)

    work()  # warmup, as llem run does
    by_window = []
    for _ in range(args.repeats):
        with measure_energy() as window:
            window.tokens = work()
        by_window.append(window.joules_per_token)

    for label, values, source in (("llem run", by_run, result.energy_source), ("measure_energy", by_window,
                                                                              window.source)):
        quartiles = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
        print(f"{label:15} {statistics.median(values):.5g} J/token  IQR {quartiles[0]:.5g}..{quartiles[2]:.5g}  "
              f"({source}, {len(values)} windows)")
    print(f"ratio measure_energy / llem run: {statistics.median(by_window) / statistics.median(by_run):.3f}")


if __name__ == "__main__":
    main()
