"""The table at the end of bench/gpu.sh: one row per step (status, time, headline numbers), from its output folder.

Each step left ``<step>.status`` ("rc milliseconds limit", or "skipped REASON"), ``<step>.log`` and, when
it got far enough, ``<step>.json`` (``tests.xml`` for the tests). A step that failed or timed out shows
the last line of its log instead of numbers; nothing here may raise on a missing or partial file.

    python bench/gpu_summary.py OUT_DIR [--device cuda|cpu] [--tiny]
"""
from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

STEPS = {
    "tests": "pytest -m cuda",
    "pruning": "bench/pruning.py",
    "train_step": "bench/train_step.py",
    "vs_hf": "bench/vs_hf.py --model mbert-shaped",
    "semi_structured": "bench/semi_structured.py",
}


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub table with no imports beyond the standard library (this must print even when torch or
    sparsenlp cannot be imported)."""
    cells = [headers, *rows]
    widths = [max(len(str(row[i])) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def last_line(path: Path, width: int = 160) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    text = lines[-1] if lines else "empty log"
    return text if len(text) <= width else text[: width - 1] + "…"


def status(out: Path, step: str) -> tuple[str, str, bool]:
    """(status text, seconds, succeeded)."""
    try:
        fields = (out / f"{step}.status").read_text().split()
    except OSError:
        return "not run", "—", False
    if not fields:
        return "unknown", "—", False
    if fields[0] == "skipped":
        return "skipped: " + " ".join(fields[1:]), "—", False
    rc, ms, limit = (fields + ["", "", ""])[:3]
    seconds = f"{int(ms) / 1000:.1f}" if ms.isdigit() else "—"
    if rc == "0":
        return "ok", seconds, True
    if rc in ("124", "137"):
        return f"timeout ({limit} s)", seconds, False
    return f"failed (exit {rc})", seconds, False


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1f}%"


def tests_headline(out: Path) -> str:
    try:
        suites = ET.parse(out / "tests.xml").getroot()
    except (OSError, ET.ParseError):
        return ""
    suites = [suites] if suites.tag == "testsuite" else list(suites.iter("testsuite"))
    count = {key: sum(int(s.get(key, 0)) for s in suites) for key in ("tests", "failures", "errors", "skipped")}
    passed = count["tests"] - count["failures"] - count["errors"] - count["skipped"]
    return (f"{passed} passed, {count['skipped']} skipped, {count['failures']} failed, {count['errors']} errors "
            f"(of {count['tests']} CUDA tests)")


def pruning_headline(out: Path) -> str:
    data = read_json(out / "pruning.json")
    if not data:
        return ""
    g, lw = data["global"], data["layerwise"]
    return (f"{data['prunable']:,} weights: global {g['sparsenlp_seconds']:.3f} s, {g['speedup']:.1f}× "
            f"global_unstructured ({g['untied_disagree']} untied mask differences); layerwise {lw['speedup']:.1f}× "
            f"l1_unstructured; 2:4 one-shot {data['nm_2_4_seconds']:.3f} s")


def train_step_headline(out: Path) -> str:
    data = read_json(out / "train_step.json")
    if not data:
        return ""
    over = data["overhead_pct"]
    return (f"dense {data['dense_ms']:.1f} ms/step ({data['precision']}, batch {data['batch_size']}); overhead: "
            f"masks {pct(over.get('sparsenlp'))}, movement scores + masks {pct(over.get('sparsenlp movement'))}, "
            f"torch.nn.utils.prune {pct(over.get('torch.nn.utils.prune'))}; apply_ {data['apply_ms']:.2f} ms, "
            f"accumulate_ {data['accumulate_ms']:.2f} ms")


def vs_hf_headline(out: Path) -> str:
    data = read_json(out / "vs_hf.json")
    if not data or not all(data.get(v) for v in ("ours", "hf")):
        return ""
    ours, hf = data["ours"][0], data["hf"][0]
    parts = [f"throughput {hf['train_seconds'] / ours['train_seconds']:.2f}× HF Trainer",
             f"test F1 {100 * ours['test']['f1']:.2f} vs {100 * hf['test']['f1']:.2f} (random init)",
             f"{ours['steps']} steps, {ours['extra'].get('precision', '?')}"]
    if ours.get("cuda_peak_mib") and hf.get("cuda_peak_mib"):
        parts.append(f"peak CUDA {ours['cuda_peak_mib']:,.0f} vs {hf['cuda_peak_mib']:,.0f} MiB")
    return "; ".join(parts)


def semi_structured_headline(out: Path) -> str:
    data = read_json(out / "semi_structured.json")
    if not data:
        return ""
    dense = data["dense_ms"].get("model")
    if not data["available"]:
        return f"2:4 kernels n/a ({data['reason']}); dense masked forward {dense:.2f} ms"
    speedups = ", ".join(f"{key}: {value:.2f}×" for key, value in data["speedup"].items())
    return (f"speed-up vs dense {speedups}; logits max |Δ| {data['max_abs_diff']:.3g}, argmax agreement "
            f"{data['argmax_agreement']:.2%}; {data['backend']}, {data['dtype']}")


HEADLINES: dict[str, Callable[[Path], str]] = {
    "tests": tests_headline,
    "pruning": pruning_headline,
    "train_step": train_step_headline,
    "vs_hf": vs_hf_headline,
    "semi_structured": semi_structured_headline,
}


def summary(out: Path, device: str, tiny: bool) -> tuple[str, bool]:
    rows, all_ok = [], True
    for step, command in STEPS.items():
        text, seconds, ok = status(out, step)
        all_ok &= ok
        try:
            headline = HEADLINES[step](out)
        except (KeyError, TypeError, ValueError) as exc:  # a partial or older file: say so, keep going
            headline = f"unreadable result ({type(exc).__name__}: {exc})"
        if not ok and not text.startswith("skipped") and text != "not run":
            headline = (headline + "; " if headline else "") + f"log: {last_line(out / f'{step}.log')}"
        rows.append([step, f"`{command}`", text, seconds, headline or "—"])
    env = read_json(out / "env.json") or {}
    machine = (f"{env.get('gpu')} (compute capability {env.get('capability')}, CUDA {env.get('cuda')})"
               if env.get("gpu") else "no GPU")
    lines = [
        f"## GPU check — {'tiny smoke run' if tiny else 'mBERT-shaped (12 × 768, FFN 3072, random init)'}, "
        f"device {device}",
        "",
        markdown_table(["step", "command", "status", "seconds", "result"], rows),
        "",
        f"- machine: {machine}; {env.get('cpus', '?')} CPUs; torch {env.get('torch', '?')}, "
        f"python {env.get('python', '?')}",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; logs, full tables and JSON: {out}",
    ]
    return "\n".join(lines), all_ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()
    text, _ = summary(args.out, args.device, args.tiny)
    print(text)
    (args.out / "summary.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
