"""The flow editor's graph drawn as one SVG string, pure: what the template drew node by node in Jinja, now
joined here once and cached per revision and version by the page (a 200-step flow's graph was most of the
editor's time in Jinja). The steps are reached from the outline's index, not from the picture (an image's
parts are not links for a screen reader).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from markupsafe import Markup, escape

from backend.content.flow_form import NODE_H, NODE_W, Graph

_ARROW = (
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
    'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#444"></path></marker></defs>'
)


def svg(
    graph: Graph,
    *,
    troubled: Collection[str],
    kind_names: Mapping[str, str],
    end_word: str,
    labelled_by: str,
) -> Markup:
    """`kind_names`: each step kind in the editor's language; `labelled_by`: the ids naming the picture."""
    parts = [
        f'<svg id="flow-graph" role="img" aria-labelledby="{escape(labelled_by)}" width="{graph.width}" '
        f'height="{graph.height}" viewBox="0 0 {graph.width} {graph.height}">',
        _ARROW,
    ]
    for e in graph.edges:
        colour = "#8a5a00" if e.back else "#444"
        parts.append(
            f'<path class="edge{" back" if e.back else ""}" d="{e.path}" fill="none" stroke="{colour}" '
            f'stroke-width="1.5" marker-end="url(#arrow)" data-from="{escape(e.source)}" '
            f'data-to="{escape(e.target)}"><title>{escape(e.source)} → {escape(e.target)}</title></path>'
        )
    for n in graph.nodes:
        bad = n.id in troubled
        fill = "#fde8ea" if bad else ("#e6f2e6" if n.end else "#ffffff")
        stroke, width = ("#a4000f", 2) if bad else ("#555", 1)
        kind = escape(kind_names.get(n.label, n.label)) + (f" · {escape(end_word)}" if n.end else "")
        drop = (
            f'<text x="{NODE_W - 8}" y="37" font-size="12" fill="#7a0010" text-anchor="end" class="drop">'
            f"{escape(n.drop)}</text>"
            if n.drop
            else ""
        )
        parts.append(
            f'<g class="node" data-step="{escape(n.id)}" transform="translate({n.x},{n.y})">'
            f'<rect width="{NODE_W}" height="{NODE_H}" rx="6" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{width}"></rect><text x="8" y="19" font-size="13" fill="#111" '
            f'font-family="monospace" translate="no">{escape(n.id[:20])}</text><text x="8" y="37" '
            f'font-size="12" fill="#333">{kind}</text>{drop}</g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every name and word in it is escaped above
