"""The readable table of ``vau-r1 plan`` (the same content as its ``json=true`` output)."""

from __future__ import annotations

from typing import Any


def _gb(value: float) -> str:
    return f"{value / 1e9:8.3f} GB" if value >= 1e7 else f"{value / 1e6:8.2f} MB"


def _visual(summary: dict[str, Any]) -> str:
    real = summary["from_data"]
    data = (f"min {real['min']}, median {real['median']:g}, max {real['max']} over {real['videos']} videos"
            if real else "videos not available")  # fmt: skip
    return (
        f"{data} ({summary['data_source']}); settings bound {summary['settings_bound']} "
        f"({summary['bound_clip']}); planned {summary['planned']}"
    )


def render(plan: dict[str, Any]) -> str:
    """Text report: model, strategy, tokens, every memory term with its phases, the peak and the suggestions."""
    m, s, n, peak = plan["model"], plan["strategy"], plan["lengths"], plan["peak"]
    lines = [
        f"model      {m['name_or_path']} ({m['family']}, {m['parameters']:,} parameters, {m['trainable']:,} "
        f"trainable; architecture from {m['source']})",
        f"strategy   {s['strategy']} x {s['processes']} process(es) on {s['device']}, weights {s['weight_bytes']} B, "
        f"compute {s['compute_bytes']} B, attention {s['attention']}, gradient checkpointing "
        f"{'on' if s['gradient_checkpointing'] else 'off'}",
        f"visual     {_visual(plan['visual_tokens'])}",
        f"lengths    prompt {n['prompt_tokens']} tokens ({n['prompt_text_tokens']} text), completion "
        f"{n['completion_tokens']}; policy pass {n['rows']} rows x {n['row_tokens']} tokens"
        + (" (grpo.share_prompt)" if n["share_prompt"] else ""),
        "",
        f"{'memory per device':<40} {'size':>11}  phases",
    ]
    for term in plan["terms"]:
        note = f"  ({term['note']})" if term["note"] else ""
        lines.append(f"  {term['name']:<38} {_gb(term['bytes'])}  {','.join(term['phases'])}{note}")
    lines.append("")
    for phase, size in plan["phases"].items():
        mark = "  <- peak" if phase == peak["phase"] else ""
        lines.append(f"  phase {phase:<32} {_gb(size)}{mark}")
    verdict = "fits" if peak["fits"] else "does NOT fit"
    lines += ["", f"peak {peak['gb']:.3f} GB per device: {verdict} in gpu_memory_gb={peak['gpu_memory_gb']:g}", ""]
    lines.append("suggestions (each alone):")
    for item in plan["suggestions"]:
        size = f" -> {item['peak_gb']:.3f} GB" if "peak_gb" in item else ""
        note = f"  ({item['note']})" if item.get("note") else ""
        lines.append(f"  {item['setting']}{size}{'' if item['fits'] else ' (still too large)'}{note}")
    return "\n".join(lines)
