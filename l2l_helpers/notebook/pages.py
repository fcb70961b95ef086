"""One page of a run's site: Markdown rendered with markdown-it, an executed notebook through nbconvert with its plotly
figures and widgets' last state, TeX as MathML, no network needed to view it."""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PLOTLY_MIME = "application/vnd.plotly.v1+json"


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


PLOTLY_JS = "assets/plotly.min.js"  # relative to the site folder

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:72em;margin:1em auto;padding:0 1em;
line-height:1.45;color:#222}
nav.l2l{font-family:system-ui,sans-serif;font-size:14px;padding:.5em 1em;border-bottom:1px solid #ddd;
margin-bottom:1em;background:#fafafa}
nav.l2l a{margin-right:1.2em}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:3px 7px;vertical-align:top;text-align:left}
td.num{text-align:right}
tr.figure th{background:#eef2f7;font-size:1.05em}
td.verdict.reproduced{color:#176117}
td.verdict.not-reproduced{color:#a01010;font-weight:bold}
td.verdict.inconclusive{color:#8a5a00}
td.verdict.not-tested{color:#666}
td.failed{color:#a01010;font-weight:bold}
img{max-width:100%}
code{background:#f4f4f4;padding:0 .2em}
"""


#: nbconvert's lab template without what it would fetch from a CDN (require.js, MathJax, mermaid, the widgets'
#: HTML manager): plotly.js from the site's assets, the site's navigation bar at the top.
NOTEBOOK_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}
<script src="{{ resources.l2l_plotly_js }}"></script>
{%- endblock html_head_js_requirejs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_css -%}
<style>{{ resources.l2l_style }}</style>
{%- endblock html_head_css -%}
{%- block body_header -%}
{{ super() }}
{{ resources.l2l_nav }}
{%- endblock body_header -%}
"""


NOTEBOOK_NAV_STYLE = (
    "nav.l2l{font-family:system-ui,sans-serif;font-size:14px;padding:.5em 1em;border-bottom:1px solid #ddd;"
    "background:#fafafa}nav.l2l a{margin-right:1.2em}"
)


def markdown_html(text: str, base: str = "") -> str:
    """Markdown (CommonMark with tables, raw HTML escaped) as an HTML fragment; ``base`` is put before every
    relative link and image (e.g. ``"../"`` for a page one folder below the Markdown file)."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")

    def rebase(state: Any) -> None:
        for token in state.tokens:
            for child in [token, *(token.children or [])]:
                attr = {"link_open": "href", "image": "src"}.get(child.type)
                url = str(child.attrGet(attr) or "") if attr else ""
                if url and not re.match(r"^([a-z][a-z0-9+.-]*:|/|#)", url, re.IGNORECASE):
                    child.attrSet(attr, base + url)

    if base:
        md.core.ruler.push("rebase", rebase)
    return md.render(text)


def markdown_page(text: str, title: str, base: str = "", nav: str = "") -> str:
    """A standalone HTML page of Markdown ``text`` (:func:`markdown_html`), with ``nav`` HTML above it."""
    return _page(title, nav + markdown_html(text, base))


def _page(title: str, body: str) -> str:
    return (
        f"<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'>\n<title>{html.escape(title)}</title>\n"
        f"<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _nav(pages: Sequence[tuple[str, str]]) -> str:
    """The navigation bar: (text, relative href) pairs; none for fewer than two."""
    if len(pages) < 2:
        return ""
    links = "".join(f"<a href='{html.escape(href)}'>{html.escape(text)}</a>" for text, href in pages)
    return f"<nav class='l2l'>{links}</nav>\n"


def _plotly_html(figure: Mapping[str, Any]) -> str:
    """A plotly output (``application/vnd.plotly.v1+json``) as a div drawn by the page's plotly.js."""
    import plotly.io as pio

    spec = {"data": figure.get("data", []), "layout": figure.get("layout", {})}
    return pio.to_html(
        spec,
        config={**(figure.get("config") or {}), "displaylogo": False},  # no link to plotly.com in the toolbar
        include_plotlyjs=False,
        full_html=False,
        default_width="100%",
        default_height=f"{spec['layout'].get('height') or 525}px",
        validate=False,
    )


def _widget_html(model_id: str, state: Mapping[str, Any], depth: int = 0) -> str | None:
    """A widget's last state as static HTML (boxes, HTML and labels, progress bars: what tqdm shows), or None
    for a widget that needs its kernel."""
    model = state.get(model_id)
    if model is None or depth > 8:
        return None
    name, values = model.get("model_name", ""), model.get("state", {})
    if name in ("HBoxModel", "VBoxModel", "BoxModel"):
        children = [_widget_html(c.removeprefix("IPY_MODEL_"), state, depth + 1) for c in values.get("children", [])]
        if any(c is None for c in children):
            return None
        style = f"display:flex;flex-direction:{'row' if name == 'HBoxModel' else 'column'};gap:.5em"
        return f"<div style='{style}'>{''.join(children)}</div>"  # type: ignore[arg-type]
    if name == "HTMLModel":
        return f"<span>{values.get('value', '')}</span>"
    if name == "LabelModel":
        return f"<span>{html.escape(str(values.get('value', '')))}</span>"
    if name in ("FloatProgressModel", "IntProgressModel"):
        low, high, value = (float(values.get(k, d)) for k, d in (("min", 0), ("max", 100), ("value", 0)))
        return f"<progress value='{value - low:g}' max='{max(high - low, 1e-12):g}'></progress>"
    return None


def _notebook_links(text: str, pages: set[str]) -> str:
    """Links to other notebooks (``06_mnist.ipynb``) point to their pages; a notebook this run did not execute
    keeps its text without a link."""

    def swap(match: re.Match[str]) -> str:
        label, stem, anchor = match.group(1), match.group(2), match.group(3) or ""
        return f"[{label}]({stem}.html{anchor})" if stem in pages else label

    return re.sub(r"\[([^\]]*)\]\(([A-Za-z0-9_.-]+)\.ipynb(#[^)\s]*)?\)", swap, text)


def prepare_notebook(nb: Any, pages: set[str]) -> Any:
    """The executed notebook made ready for a static page: plotly outputs become HTML drawn by the page's
    plotly.js, widgets their last state (or their text), links between notebooks links between pages."""
    widgets = nb.metadata.pop("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = _notebook_links(cell.source, pages)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if PLOTLY_MIME in data:
                output["data"] = {"text/html": _plotly_html(data[PLOTLY_MIME])}
            elif WIDGET_MIME in data:
                shown = _widget_html(str(data[WIDGET_MIME].get("model_id", "")), widgets)
                rest = {k: v for k, v in data.items() if k != WIDGET_MIME}
                output["data"] = {"text/html": shown} if shown is not None else rest or {"text/plain": ""}
    return nb


def tex_to_mathml(tex: str, display: bool) -> str:
    """LaTeX as MathML, which browsers draw without a script (no MathJax to fetch); the TeX itself, in ``<code>``,
    where latex2mathml is missing or cannot read it."""
    try:
        from latex2mathml.converter import convert

        return convert(tex, display="block" if display else "inline")
    except Exception:  # latex2mathml absent, or TeX it does not know: the reader still sees the formula's source
        delimiter = "$$" if display else "$"
        return f"<code class='tex'>{html.escape(delimiter + tex + delimiter)}</code>"


@functools.cache
def _exporter_class() -> type:
    """nbconvert's HTMLExporter whose Markdown renders ``$...$``, ``$$...$$`` and LaTeX environments as MathML."""
    from jinja2 import pass_context
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    class MathMLRenderer(IPythonRenderer):
        def block_math(self, body: str) -> str:
            return tex_to_mathml(body, display=True)

        def inline_math(self, body: str) -> str:
            return tex_to_mathml(body, display=False)

        def latex_environment(self, name: str, body: str) -> str:
            return tex_to_mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", display=True)

    class SiteExporter(HTMLExporter):
        @pass_context  # the template's context holds the cell (for its attachments)
        def markdown2html(self, context: Any, source: str) -> str:
            cell = context.get("cell", {})
            renderer = MathMLRenderer(
                escape=False,
                attachments=cell.get("attachments", {}),
                embed_images=self.embed_images,
                path=context.get("resources", {}).get("metadata", {}).get("path", ""),
                anchor_link_text=self.anchor_link_text,
                exclude_anchor_links=self.exclude_anchor_links,
                **self.lexer_options,
            )
            return MarkdownWithMath(renderer=renderer).render(source)

    return SiteExporter


def notebook_page(path: Path, pages: set[str], nav: str) -> str:
    """One executed notebook as a standalone HTML page of the site (nbconvert's ``lab`` template, offline)."""
    import nbformat
    from jinja2 import DictLoader

    nb = prepare_notebook(nbformat.read(path, as_version=4), pages)
    exporter = _exporter_class()(
        template_name="lab",
        extra_loaders=[DictLoader({"l2l_site.html.j2": NOTEBOOK_TEMPLATE})],
        template_file="l2l_site.html.j2",
    )
    resources = {"l2l_plotly_js": PLOTLY_JS, "l2l_nav": nav, "l2l_style": NOTEBOOK_NAV_STYLE}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return body
