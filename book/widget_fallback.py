"""Static HTML for the chapters' widgets, from the widget state the notebooks were saved with.

A saved notebook keeps each widget twice: the cell's output names a model (a widget-view output) and
`metadata.widgets` holds every model's last state (values, option labels, an Output widget's outputs, an Image
widget's bytes). A page without a kernel cannot run the widget, so the site replaces each view with what that
state shows: controls drawn disabled at their saved values, HTML as it was, images and tables as they were,
under a line saying the panel is interactive in JupyterLab or Colab. A view whose state was not saved, or
whose state shows nothing, becomes that line alone; the cell's other outputs (a committed figure) stay.
"""

from __future__ import annotations

import base64
import html
import json

from markdown_it import MarkdownIt

VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"
NOTE = "Interactive in JupyterLab or Colab"
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")
_markdown = MarkdownIt("commonmark").enable("table")


def _labelled(state: dict, control: str) -> str:
    description = state.get("description") or ""
    label = f'<span class="wf-label">{html.escape(description)}</span>' if description else ""
    return f'<label class="wf-control">{label}{control}</label>'


def _options(state: dict, selected: set[int]) -> str:
    return "".join(
        f"<option{' selected' if i in selected else ''}>{html.escape(str(label))}</option>"
        for i, label in enumerate(state.get("_options_labels", []))
    )


def _selection(state: dict) -> set[int]:
    index = state.get("index")
    if index is None:
        return set()
    return set(index) if isinstance(index, list) else {index}


def _output(output: dict, models: dict[str, dict]) -> str:
    """One saved output of an Output widget, as the notebook would show it."""
    if output.get("output_type") == "stream":
        return f'<pre class="wf-text">{html.escape("".join(output.get("text", "")))}</pre>'
    data = output.get("data", {})
    if VIEW in data:  # a widget displayed inside the Output widget
        return render_model(data[VIEW].get("model_id", ""), models)
    for mime in IMAGE_TYPES:
        if mime in data:
            payload = "".join(data[mime])
            if mime == "image/svg+xml":
                payload = base64.b64encode(payload.encode()).decode()
            return f'<img class="wf-image" alt="saved output" src="data:{mime};base64,{payload.strip()}">'
    if "text/html" in data:
        return "".join(data["text/html"])
    if "text/markdown" in data:
        return _markdown.render("".join(data["text/markdown"]))
    if "text/plain" in data:
        return f'<pre class="wf-text">{html.escape("".join(data["text/plain"]))}</pre>'
    return ""


def _image(model: dict) -> str:
    """An Image widget: its bytes travel as a base64 buffer beside the state."""
    for buffer in model.get("buffers", []):
        if buffer.get("path") == ["value"]:
            fmt = model["state"].get("format", "png")
            mime = "image/svg+xml" if fmt == "svg" else f"image/{fmt}"
            return f'<img class="wf-image" alt="saved image" src="data:{mime};base64,{buffer["data"]}">'
    return ""


def render_model(model_id: str, models: dict[str, dict]) -> str:
    """HTML for one widget model and its children; '' for a model the page cannot show."""
    model = models.get(model_id)
    if model is None:
        return ""
    name, state = model.get("model_name", ""), model.get("state", {})
    value = state.get("value")
    if name in ("VBoxModel", "HBoxModel", "BoxModel", "GridBoxModel", "AccordionModel", "TabModel"):
        kind = "wf-hbox" if name == "HBoxModel" else "wf-vbox"
        ids = [c.removeprefix("IPY_MODEL_") for c in state.get("children", [])]
        children = "".join(render_model(c, models) for c in ids)
        return f'<div class="{kind}">{children}</div>' if children else ""
    if name == "OutputModel":
        return "".join(_output(o, models) for o in state.get("outputs", []))
    if name == "ImageModel":
        return _image(model)
    if name in ("HTMLModel", "HTMLMathModel"):
        return f'<div class="wf-html">{value}</div>' if value else ""
    if name == "LabelModel":
        return f'<span class="wf-label">{html.escape(str(value or ""))}</span>'
    if name in ("DropdownModel", "ToggleButtonsModel", "RadioButtonsModel", "SelectModel"):
        return _labelled(state, f"<select disabled>{_options(state, _selection(state))}</select>")
    if name == "SelectMultipleModel":
        rows = state.get("rows") or len(state.get("_options_labels", []))
        options = _options(state, _selection(state))
        return _labelled(state, f'<select multiple disabled size="{rows}">{options}</select>')
    if name in ("ButtonModel", "ToggleButtonModel"):
        return f'<button type="button" disabled>{html.escape(state.get("description", ""))}</button>'
    if name in ("CheckboxModel",):
        return _labelled(state, f'<input type="checkbox" disabled{" checked" if value else ""}>')
    if name.endswith("SliderModel") and not isinstance(value, list):
        bounds = f'min="{state.get("min", 0)}" max="{state.get("max", 100)}" step="{state.get("step", 1)}"'
        shown = html.escape(str(value))
        control = f'<input type="range" disabled {bounds} value="{value}"><output>{shown}</output>'
        return _labelled(state, control)
    if name.endswith("ProgressModel"):
        return _labelled(state, f'<progress value="{value}" max="{state.get("max", 1)}"></progress>')
    if name.endswith("TextModel") or name.endswith("TextareaModel"):
        return _labelled(state, f'<input type="text" disabled value="{html.escape(str(value))}">')
    if value is not None and not isinstance(value, (dict, list)):
        return _labelled(state, f'<span class="wf-value">{html.escape(str(value))}</span>')
    return ""


def _shows_something(fragment: str) -> bool:
    """Whether a rendered panel holds more than disabled controls: an image, a table or text."""
    return any(tag in fragment for tag in ("<img", "<table", "<svg", 'class="wf-text"', 'class="wf-html"'))


def fallback_html(model_id: str, models: dict[str, dict]) -> str:
    body = render_model(model_id, models)
    if not _shows_something(body):
        return (
            f'<div class="widget-fallback widget-fallback-empty"><p class="wf-note">{NOTE}: '
            "run the notebook to use this control.</p></div>"
        )
    note = f'<p class="wf-note">{NOTE}: below, the panel as saved (its figures, tables and settings).</p>'
    return f'<div class="widget-fallback">{note}{body}</div>'


def replace_widget_views(notebook: dict) -> int:
    """Swap every widget view in `notebook` for its static fallback, in place; drop the saved widget state.

    Returns how many views were replaced. Without the state in `metadata.widgets` the page loads no widget
    JavaScript (which would come from a CDN), so the fallbacks are all a reader sees.
    """
    saved = notebook.get("metadata", {}).pop("widgets", {}) or {}
    models = saved.get(STATE, {}).get("state", {})
    replaced = 0
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(VIEW)
            if view is None:
                continue
            output["data"] = {"text/html": fallback_html(view.get("model_id", ""), models)}
            replaced += 1
    return replaced


def convert_source(text: str) -> str:
    """A notebook's JSON text with its widget views replaced (the text unchanged when it has none)."""
    if VIEW not in text and STATE not in text:
        return text
    notebook = json.loads(text)
    replace_widget_views(notebook)
    return json.dumps(notebook)
