"""Explanations as HTML: tokens shaded by attribution, attention heat maps as inline SVG.

Everything is self-contained (inline CSS and SVG, no scripts, no network), and every piece of
user text goes through ``html.escape``. ``render_fragment`` is what the run report embeds;
``render_page`` wraps it in a page of its own.
"""

from __future__ import annotations

import html
from typing import Any

from tunelab.explain.heat_map import attention_svg

STYLE = """
.tl-ex { font-family: system-ui, sans-serif; color: #222; }
.tl-ex section { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 1em; margin: 1em 0; }
.tl-ex h3 { margin: 0.2em 0 0.4em; font-size: 1.05em; }
.tl-ex .meta { color: #555; font-size: 0.9em; margin: 0.2em 0 0.5em; }
.tl-ex .tokens { line-height: 2.1; font-size: 1.1em; }
.tl-ex .tok { padding: 0.15em 0.05em; border-radius: 3px; }
.tl-ex .special { color: #888; font-size: 0.75em; font-family: monospace; }
.tl-ex .focus { outline: 2px solid #1f5fa8; }
.tl-ex .legend { font-size: 0.9em; color: #555; }
.tl-ex figure { margin: 0.5em 0; }
.tl-ex figcaption { font-size: 0.9em; color: #555; }
.tl-ex svg { max-width: 100%; height: auto; }
"""
# Largest attention matrix drawn with a token name on every row and column.
LABELLED_TOKENS = 60
# Probability change the attributions may miss before the page says to raise the steps.
UNCONVERGED = 0.05


def shade(value: float, scale: float) -> str:
    """Background colour: green for tokens that raised the score, red for those that lowered it."""
    strength = 0.0 if scale <= 0 else min(1.0, abs(value) / scale) * 0.85
    rgb = "22, 163, 74" if value >= 0 else "220, 38, 38"
    return f"rgba({rgb}, {strength:.3f})"


def _token_texts(explanation: dict[str, Any]) -> list[tuple[str, bool]]:
    """What to show for each token (the text's own characters where offsets are known), and
    whether a space goes before it."""
    text, shown, previous_end = explanation["text"], [], None
    for token, offset in zip(explanation["tokens"], explanation["offsets"], strict=True):
        if offset is None:
            shown.append((token, True))
            continue
        start, end = offset
        gap = (
            previous_end is not None
            and text[previous_end:start].strip() == ""
            and (start > previous_end)
        )
        shown.append((text[start:end] or token, gap))
        previous_end = end
    return shown


def _tokens_html(explanation: dict[str, Any], attributions: list[float], focus: int | None) -> str:
    scale = max((abs(v) for v in attributions), default=0.0)
    parts = []
    shown = _token_texts(explanation)
    for i, ((text, space), value) in enumerate(zip(shown, attributions, strict=True)):
        token = explanation["tokens"][i]
        classes = ["tok"]
        if explanation["special"][i]:
            classes.append("special")
        if i == focus:
            classes.append("focus")
        title = html.escape(f"{token}: {value:+.4f}", quote=True)
        parts.append(
            f'{" " if space and parts else ""}<span class="{" ".join(classes)}" '
            f'style="background: {shade(value, scale)}" title="{title}">{html.escape(text)}</span>'
        )
    return f'<div class="tokens">{"".join(parts)}</div>'


def rounded(value: Any) -> str:
    return "–" if value is None else f"{value:.4f}"


def _convergence(delta: float | None) -> str:
    """A warning when the attributions miss the probability change by more than 0.05."""
    if delta is None or abs(delta) <= UNCONVERGED:
        return ""
    return (
        f'<p class="meta"><strong>The attributions have not converged (delta {delta:+.3f}): '
        "run again with more --steps.</strong></p>"
    )


def _heat_map_svg(explanation: dict[str, Any]) -> str:
    """The attention matrix as an inline SVG, each row and column named by its token's text
    when there are at most :data:`LABELLED_TOKENS` of them."""
    matrix = explanation["attention"]["matrix"]
    names = None
    if len(matrix) <= LABELLED_TOKENS:
        names = [text.strip() or token for (text, _), token in
                 zip(_token_texts(explanation), explanation["tokens"], strict=True)]  # fmt: skip
    return attention_svg(matrix, names)


def _attention_html(explanation: dict[str, Any]) -> str:
    attention = explanation.get("attention")
    if not attention:
        return '<p class="meta">This model returned no attention weights.</p>'
    head = "mean of all heads" if attention["head"] is None else f"head {attention['head']}"
    caption = (
        f"Attention of layer {attention['layer']} (of {attention['layers']}), {head} "
        f"(of {attention['heads']}): each row is a token's weights over the tokens it reads."
    )
    return (
        f"<figure>{_heat_map_svg(explanation)}"
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _section(number: int, explanation: dict[str, Any]) -> str:
    parts = [f"<section><h3>Text {number}</h3>"]
    targets = explanation.get("targets")
    if targets is None:  # one label for the whole text
        target, predicted = explanation["target"], explanation["predicted"]
        if explanation.get("probability") is None:
            heading = f"predicted value {explanation.get('value')}"
        else:
            heading = f"explained: {target} (probability {rounded(explanation['probability'])})"
            if str(predicted) != str(target):
                heading += f"; the model predicts {predicted}"
        parts.append(f'<p class="meta">{html.escape(heading)}; '
                     f'convergence delta {rounded(explanation["delta"])}</p>')  # fmt: skip
        parts.append(_tokens_html(explanation, explanation["attributions"], None))
        if explanation.get("probability") is not None:
            parts.append(_convergence(explanation["delta"]))
    elif not targets:
        parts.append('<p class="meta">No token of this text is tagged as an entity.</p>')
    for item in targets or []:
        line = (
            f"token {item['token_index']} “{item['token']}” → {item['target']} "
            f"(probability {rounded(item['probability'])}; delta {rounded(item['delta'])})"
        )
        parts.append(f'<p class="meta">{html.escape(line)}</p>')
        parts.append(_tokens_html(explanation, item["attributions"], item["token_index"]))
        parts.append(_convergence(item["delta"]))
    parts.append(_attention_html(explanation))
    parts.append("</section>")
    return "\n".join(parts)


def render_fragment(explanations: list[dict[str, Any]]) -> str:
    """The explanations as an HTML fragment (own ``<style>``, no scripts) for a larger page."""
    legend = (
        '<p class="legend">Token colours: <span class="tok" style="background: '
        f'{shade(1, 1)}">raised</span> or <span class="tok" style="background: {shade(-1, 1)}">'
        "lowered</span> the explained probability (integrated gradients against a baseline of "
        "padding tokens; hover a token for its value). The convergence delta is how far the "
        "attributions' sum is from the probability change they explain.</p>"
    )
    sections = [_section(i, e) for i, e in enumerate(explanations, start=1)]
    return f'<div class="tl-ex"><style>{STYLE}</style>{legend}\n' + "\n".join(sections) + "\n</div>"


def render_page(explanations: list[dict[str, Any]], title: str = "Explanations") -> str:
    """A complete self-contained HTML page (no network, no scripts) of the explanations."""
    return page(title, render_fragment(explanations))


def page(title: str, fragment: str) -> str:
    """A self-contained HTML page around an explanations fragment, under ``title``."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n"
        "<style>body { max-width: 1000px; margin: 1.5em auto; padding: 0 1em; }</style>\n"
        f"</head>\n<body>\n<h1>{html.escape(title)}</h1>\n{fragment}\n</body>\n</html>\n"
    )
